"""Reading sigstore's trusted_root.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tidegate.sign._errors import VerificationError
from tidegate.sign._trustroot import TrustedRoot
from tidegate.testing._sigstore import TestCA, TestLog, trusted_root_json


def test_default_is_sigstore_public_good() -> None:
    root = TrustedRoot.default()

    assert len(root.certificate_authorities) >= 1
    assert len(root.tlogs) >= 1
    # Rekor's public-good log, by its well-known id.
    assert "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d" in {
        t.log_id_hex for t in root.tlogs
    }
    roots = [ca.root for ca in root.certificate_authorities]
    assert all(r.subject == r.issuer for r in roots)
    assert any("sigstore" in r.subject.rfc4514_string() for r in roots)
    # The first Fulcio CA was retired at the end of 2022.
    first = root.certificate_authorities[0]
    assert first.valid_for.end is not None
    assert first.valid_for.end.year == 2022
    assert not first.valid_for.contains(datetime(2023, 6, 1, tzinfo=UTC))
    assert first.valid_for.contains(datetime(2022, 6, 1, tzinfo=UTC))


def test_reads_a_test_root() -> None:
    ca, log = TestCA(), TestLog()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=30)

    root = TrustedRoot.from_json(
        trusted_root_json(ca, log, ca_valid_for=(start, end), log_valid_for=(start, None))
    )

    (authority,) = root.certificate_authorities
    assert authority.certificates == (ca.intermediate, ca.root)
    assert authority.root == ca.root
    assert authority.intermediates == (ca.intermediate,)
    assert authority.valid_for.start == start
    assert authority.valid_for.end == end
    (tlog,) = root.tlogs
    assert isinstance(tlog.public_key, ec.EllipticCurvePublicKey)
    assert tlog.log_id_hex == log.log_id
    assert tlog.key_details == "PKIX_ECDSA_P256_SHA_256"
    assert tlog.valid_for.end is None
    assert tlog.valid_for.contains(datetime(2100, 1, 1, tzinfo=UTC))
    assert not tlog.valid_for.contains(start - timedelta(seconds=1))


def _root_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(trusted_root_json(TestCA(), TestLog()))
    return doc


def _broken(change: str) -> bytes:
    doc = _root_doc()
    if change == "media type":
        doc["mediaType"] = "application/json"
    elif change == "certificate":
        doc["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = "AAAA"
    elif change == "base64":
        doc["tlogs"][0]["publicKey"]["rawBytes"] = "not base64!"
    elif change == "key":
        doc["tlogs"][0]["publicKey"]["rawBytes"] = "AAAA"
    elif change == "time":
        doc["tlogs"][0]["publicKey"]["validFor"]["start"] = "yesterday"
    elif change == "chain":
        doc["certificateAuthorities"][0]["certChain"] = {"certificates": []}
    elif change == "tlogs":
        doc["tlogs"] = {"not": "a list"}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (_broken("media type"), "unknown mediaType"),
        (_broken("certificate"), "not a DER certificate"),
        (_broken("base64"), "not base64"),
        (_broken("key"), "not a DER public key"),
        (_broken("time"), "not an RFC 3339 timestamp"),
        (_broken("chain"), "certificates is empty"),
        (_broken("tlogs"), "tlogs is not a list"),
    ],
)
def test_rejects_malformed_roots(data: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=f"invalid trusted root: .*{message}"):
        TrustedRoot.from_json(data)
