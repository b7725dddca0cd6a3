"""Cosign classic keyless signatures: Rekor bundle and Fulcio certificate, checked offline."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tidegate.sign._errors import VerificationError
from tidegate.sign._identity import Identity
from tidegate.sign._keyless import (
    certificate_identity,
    match_identity,
    oidc_issuer,
    subject_alternative_names,
    verify_certificate,
    verify_rekor_bundle,
)
from tidegate.sign._trustroot import TrustedRoot
from tidegate.testing._sigstore import SigningCertificate, TestCA, TestLog, trusted_root_json

WORKFLOW = "https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"
GITHUB = "https://token.actions.githubusercontent.com"
GITHUB_ORG = Identity(issuer="^https://token.actions.githubusercontent.com$", subject=WORKFLOW)
PAYLOAD = json.dumps(
    {
        "critical": {
            "identity": {"docker-reference": "127.0.0.1/app"},
            "image": {"docker-manifest-digest": "sha256:" + "a" * 64},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
).encode()
# Signing happens at T; Fulcio leaves are valid T-1min … T+9min.
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class Signed:
    """What a keyless `.sig` layer carries, and the trusted root that should accept it."""

    ca: TestCA
    log: TestLog
    leaf: SigningCertificate
    signature: bytes
    bundle: dict[str, Any]
    root: TrustedRoot

    def verify_bundle(self, **changes: Any) -> datetime:
        args: dict[str, Any] = {
            "payload": PAYLOAD,
            "signature": self.signature,
            "certificate_pem": self.leaf.cert_pem,
        }
        args.update(changes)
        return verify_rekor_bundle(self.bundle, self.root, **args)

    def verify_certificate(
        self,
        identities: Sequence[Identity] = (GITHUB_ORG,),
        at: datetime | None = None,
        chain_pem: bytes | None = None,
    ) -> Any:
        return verify_certificate(
            self.leaf.cert_pem,
            self.leaf.chain_pem if chain_pem is None else chain_pem,
            self.root,
            identities,
            at or T,
        )


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def log() -> TestLog:
    return TestLog()


def sign(
    ca: TestCA,
    log: TestLog,
    *,
    subject: str = WORKFLOW,
    issuer: str = GITHUB,
    integrated_time: datetime = T,
    root: bytes | None = None,
    **issue: Any,
) -> Signed:
    leaf = ca.issue(subject, issuer, T - timedelta(minutes=1), **issue)
    signature = leaf.sign(PAYLOAD)
    bundle = log.bundle_annotation(PAYLOAD, signature, leaf.cert_pem, integrated_time, 42)
    trusted = TrustedRoot.from_json(root or trusted_root_json(ca, log))
    return Signed(ca, log, leaf, signature, bundle, trusted)


@pytest.fixture
def signed(ca: TestCA, log: TestLog) -> Signed:
    return sign(ca, log)


# -- accepted ------------------------------------------------------------------------------


def test_valid_keyless_signature_is_accepted(signed: Signed) -> None:
    at = signed.verify_bundle()
    certificate = signed.verify_certificate(at=at)

    assert at == T
    assert at.tzinfo is not None
    assert certificate == signed.leaf.certificate
    assert certificate_identity(certificate) == (GITHUB, WORKFLOW)


def test_chain_may_come_from_the_trusted_root_alone(signed: Signed) -> None:
    assert verify_certificate(signed.leaf.cert_pem, None, signed.root, [GITHUB_ORG], T)


def test_email_identity(ca: TestCA, log: TestLog) -> None:
    s = sign(
        ca, log, subject="dev@example.com", issuer="https://accounts.google.com", san_kind="email"
    )
    google = Identity(issuer="^https://accounts\\.google\\.com$", subject="^dev@example\\.com$")

    assert s.verify_certificate([google], at=s.verify_bundle())


def test_othername_identity(ca: TestCA, log: TestLog) -> None:
    s = sign(
        ca, log, subject="someone!example.com", issuer="https://example.com", san_kind="othername"
    )

    assert subject_alternative_names(s.leaf.certificate) == ["someone!example.com"]
    assert s.verify_certificate([Identity("example", "^someone!example.com$")])


def test_deprecated_issuer_extension_is_read(ca: TestCA, log: TestLog) -> None:
    s = sign(ca, log, issuer_extension="v1")

    assert oidc_issuer(s.leaf.certificate) == GITHUB
    assert s.verify_certificate()


def test_rekord_entries_are_accepted(signed: Signed) -> None:
    body = signed.log.entry_body(PAYLOAD, signed.signature, signed.leaf.cert_pem, kind="rekord")
    signed.bundle = signed.log.bundle_annotation(
        PAYLOAD, signed.signature, signed.leaf.cert_pem, T, 42, body=body
    )

    assert signed.verify_bundle() == T


def test_keyed_entries_match_the_public_key(signed: Signed) -> None:
    public_pem = signed.leaf.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = signed.log.entry_body(PAYLOAD, signed.signature, public_pem)
    signed.bundle = signed.log.bundle_annotation(
        PAYLOAD, signed.signature, signed.leaf.cert_pem, T, 42, body=body
    )

    assert signed.verify_bundle(certificate_pem=None, public_key_pem=public_pem) == T
    other = TestCA().issue(WORKFLOW, GITHUB).private_key.public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(VerificationError, match="body does not match the public key"):
        signed.verify_bundle(certificate_pem=None, public_key_pem=other_pem)


# -- the transparency log proof -----------------------------------------------------------


def test_tampered_payload_is_rejected(signed: Signed) -> None:
    with pytest.raises(
        VerificationError, match="transparency log entry: body does not match the payload"
    ):
        signed.verify_bundle(payload=PAYLOAD.replace(b"aaaa", b"bbbb"))


def test_other_signature_is_rejected(signed: Signed) -> None:
    with pytest.raises(
        VerificationError, match="transparency log entry: body does not match the signature"
    ):
        signed.verify_bundle(signature=signed.leaf.sign(PAYLOAD))


def test_wrong_certificate_is_rejected(signed: Signed) -> None:
    other = signed.ca.issue(WORKFLOW, GITHUB, T - timedelta(minutes=1))

    with pytest.raises(
        VerificationError, match="transparency log entry: body does not match the certificate"
    ):
        signed.verify_bundle(certificate_pem=other.cert_pem)


def test_set_from_another_log_key_is_rejected(signed: Signed) -> None:
    # An entry claiming the trusted log's id, but signed by a key the root does not trust.
    impostor = TestLog()
    payload = signed.bundle["Payload"]
    forged = impostor.sign_entry(payload["body"], payload["integratedTime"], 42, signed.log.log_id)
    signed.bundle["SignedEntryTimestamp"] = base64.b64encode(forged).decode()

    with pytest.raises(
        VerificationError, match="transparency log entry: signed entry timestamp invalid"
    ):
        signed.verify_bundle()


@pytest.mark.parametrize(
    ("field", "value"),
    [("integratedTime", 1), ("logIndex", 7), ("body", None)],
)
def test_modified_bundle_payload_breaks_the_set(signed: Signed, field: str, value: Any) -> None:
    payload = signed.bundle["Payload"]
    if field == "body":
        # A body naming another payload: the SET no longer covers it.
        other = signed.log.entry_body(b"other", signed.signature, signed.leaf.cert_pem)
        value = base64.b64encode(other).decode()
    elif field == "integratedTime":
        value = payload["integratedTime"] + value
    payload[field] = value

    with pytest.raises(
        VerificationError, match="transparency log entry: signed entry timestamp invalid"
    ):
        signed.verify_bundle()


def test_log_not_in_the_trusted_root_is_rejected(ca: TestCA, log: TestLog) -> None:
    other_log = TestLog()
    s = sign(ca, other_log, root=trusted_root_json(ca, log))

    with pytest.raises(
        VerificationError, match=f"log id '{other_log.log_id}' is not in the trusted root"
    ):
        s.verify_bundle()


def test_log_outside_its_validity_is_rejected(ca: TestCA, log: TestLog) -> None:
    window = (T + timedelta(days=1), None)
    s = sign(ca, log, root=trusted_root_json(ca, log, log_valid_for=window))

    with pytest.raises(
        VerificationError, match="not in the trusted root at the entry's integrated"
    ):
        s.verify_bundle()


@pytest.mark.parametrize(
    ("field", "value"),
    [("logID", None), ("integratedTime", "1700000000"), ("integratedTime", 10**20)],
)
def test_malformed_bundle_is_rejected(signed: Signed, field: str, value: Any) -> None:
    if value is None:
        del signed.bundle["Payload"][field]
    else:
        signed.bundle["Payload"][field] = value

    with pytest.raises(VerificationError, match="transparency log entry: malformed bundle"):
        signed.verify_bundle()


def test_unreadable_certificate_is_rejected(signed: Signed) -> None:
    with pytest.raises(VerificationError, match="certificate is not a PEM certificate"):
        signed.verify_bundle(certificate_pem=b"garbage")
    with pytest.raises(VerificationError, match="certificate is not a PEM certificate"):
        verify_certificate(b"garbage", None, signed.root, [GITHUB_ORG], T)


# -- the certificate ----------------------------------------------------------------------


def test_certificate_expired_at_signing_time_is_rejected(ca: TestCA, log: TestLog) -> None:
    # Logged 20 minutes after the leaf was issued: its ten minutes were over.
    s = sign(ca, log, integrated_time=T + timedelta(minutes=20))
    at = s.verify_bundle()

    with pytest.raises(VerificationError, match="certificate was not valid at signing time"):
        s.verify_certificate(at=at)


def test_certificate_not_yet_valid_at_signing_time_is_rejected(ca: TestCA, log: TestLog) -> None:
    s = sign(ca, log, integrated_time=T - timedelta(minutes=5))
    at = s.verify_bundle()

    with pytest.raises(VerificationError, match="certificate was not valid at signing time"):
        s.verify_certificate(at=at)


def test_signing_time_not_now_decides(signed: Signed) -> None:
    # The leaf expired long ago; what counts is that it was valid when logged.
    assert signed.leaf.certificate.not_valid_after_utc < datetime.now(UTC)
    assert signed.verify_certificate(at=signed.verify_bundle())


def test_untrusted_root_is_rejected(log: TestLog) -> None:
    trusted, other = TestCA("trusted"), TestCA("other")
    s = sign(other, log, root=trusted_root_json(trusted, log))

    with pytest.raises(
        VerificationError, match="certificate chain does not lead to a trusted root"
    ):
        s.verify_certificate()
    with pytest.raises(
        VerificationError, match="certificate chain does not lead to a trusted root"
    ):
        s.verify_certificate(chain_pem=b"")


def test_ca_outside_its_validity_is_rejected(ca: TestCA, log: TestLog) -> None:
    window = (T - timedelta(days=30), T - timedelta(days=1))
    s = sign(ca, log, root=trusted_root_json(ca, log, ca_valid_for=window))

    with pytest.raises(
        VerificationError,
        match="certificate chain does not lead to a trusted root: no certificate authority",
    ):
        s.verify_certificate()


def test_intermediate_expired_at_signing_time_is_rejected(log: TestLog) -> None:
    # The CA certificates ended before the (otherwise valid) leaf was used.
    ca = TestCA(not_before=T - timedelta(days=30), not_after=T - timedelta(days=1))
    s = sign(ca, log)

    with pytest.raises(
        VerificationError, match="certificate chain does not lead to a trusted root"
    ):
        s.verify_certificate()


def test_certificate_without_code_signing_is_rejected(ca: TestCA, log: TestLog) -> None:
    s = sign(ca, log, eku=False)

    with pytest.raises(VerificationError, match="not for code signing"):
        s.verify_certificate()


# -- identities ---------------------------------------------------------------------------


def test_subject_mismatch_is_rejected(signed: Signed) -> None:
    other = Identity(issuer=GITHUB, subject="^https://github.com/other/")

    with pytest.raises(
        VerificationError,
        match=re.escape(
            "identity mismatch: no matchOIDCIdentity entry matches issuer "
            f"'{GITHUB}' and subject '{WORKFLOW}'"
        ),
    ):
        signed.verify_certificate([other])


def test_issuer_mismatch_is_rejected(signed: Signed) -> None:
    gitlab = Identity(issuer="^https://gitlab.com$", subject=".*")

    with pytest.raises(VerificationError, match=r"identity mismatch: .* issuer 'https://token"):
        signed.verify_certificate([gitlab])


def test_issuer_and_subject_must_match_the_same_entry(signed: Signed) -> None:
    # One entry matches the issuer only, the other the subject only: not a match.
    split = [Identity(GITHUB, "^nobody$"), Identity("^nowhere$", WORKFLOW)]

    with pytest.raises(VerificationError, match="identity mismatch"):
        signed.verify_certificate(split)


def test_no_identities_match_nothing(signed: Signed) -> None:
    with pytest.raises(VerificationError, match="identity mismatch"):
        signed.verify_certificate([])


def test_any_identity_may_match(signed: Signed) -> None:
    identities = [
        Identity(issuer="^https://gitlab.com$", subject=".*"),
        Identity(
            issuer="^https://token.actions.githubusercontent.com$",
            subject="^https://github.com/org/.*$",
        ),
    ]

    assert signed.verify_certificate(identities)


@pytest.mark.parametrize(
    ("subject", "matches"),
    [
        ("^https://github.com/org/.*$", True),
        ("github.com/org/", True),  # unanchored, as Go's regexp.MatchString
        ("@refs/heads/main", True),
        ("^github.com/org/", False),
        ("^https://github.com/org/repo$", False),
        ("refs/heads/main\\z", True),
        ("(?i)HTTPS://GITHUB.COM/ORG", True),
    ],
)
def test_identities_are_go_regexps(signed: Signed, subject: str, matches: bool) -> None:
    identity = Identity(issuer="githubusercontent", subject=subject)
    if matches:
        assert signed.verify_certificate([identity])
    else:
        with pytest.raises(VerificationError, match="identity mismatch"):
            signed.verify_certificate([identity])


@pytest.mark.parametrize(
    "identity", [Identity(issuer="(?=x)", subject=".*"), Identity(issuer="nowhere", subject="a**")]
)
def test_invalid_go_regexp_is_reported_as_such(signed: Signed, identity: Identity) -> None:
    with pytest.raises(
        VerificationError, match="identity expression: invalid Go regular expression"
    ):
        signed.verify_certificate([identity])


def test_match_identity_names_the_matching_subject(signed: Signed) -> None:
    identities = [Identity("nowhere", ".*"), Identity("githubusercontent", "github")]

    assert match_identity(signed.leaf.certificate, identities) == WORKFLOW
