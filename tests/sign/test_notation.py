"""Notary Project signatures (JWS and COSE) against the real registry, and every rejection."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tidegate import oci
from tidegate.oci import Reference, Registry
from tidegate.sign._errors import VerificationError
from tidegate.sign._notation import (
    COSE_MEDIA_TYPE,
    JWS_MEDIA_TYPE,
    TrustPolicy,
    trust_material_from_secret,
    verify_notation,
)
from tidegate.testing._notation import (
    DEFAULT_SUBJECT,
    descriptor,
    make_ca,
    make_signing_cert,
    push_notation_signature,
    sign_cose,
    sign_jws,
)

pytestmark = pytest.mark.registry
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)
SIGNERS = {"jws": (sign_jws, JWS_MEDIA_TYPE), "cose": (sign_cose, COSE_MEDIA_TYPE)}


def policy(level: str = "strict", identities: list[str] | None = None, **extra: Any) -> bytes:
    statement = {
        "name": "test",
        "registryScopes": ["*"],
        "signatureVerification": {"level": level, **extra},
        "trustStores": ["ca:test"],
        "trustedIdentities": identities or ["*"],
    }
    return json.dumps({"version": "1.0", "trustPolicies": [statement]}).encode()


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    ca, ca_key = make_ca()
    leaf, key = make_signing_cert(ca, ca_key)
    return {"ca": ca, "ca_key": ca_key, "leaf": leaf, "key": key, "chain": [leaf, ca]}


async def push_artifact(client: Registry, registry: str, tmp_path: Path, text: str) -> Reference:
    (tmp_path / text).mkdir()
    (tmp_path / text / "data.txt").write_text(text)
    target = Reference.parse(f"{registry}/notation/{uuid.uuid4().hex[:8]}:v1")
    pushed = await oci.push(client, target, tmp_path / text, source="s", revision="r")
    return target.with_digest(pushed.digest)


async def target_of(client: Registry, ref: Reference) -> dict[str, Any]:
    manifest = await client.fetch_manifest(ref)
    return descriptor(manifest.media_type, manifest.digest, len(manifest.data))


def secret(trust_policy: bytes, *certs: x509.Certificate) -> dict[str, bytes]:
    data = {"trustpolicy.json": trust_policy}
    for i, cert in enumerate(certs):
        data[f"ca{i}.crt"] = cert.public_bytes(Encoding.PEM)
    return data


async def verify(
    client: Registry, ref: Reference, trust_policy: bytes, *certs: x509.Certificate
) -> str:
    parsed, stores = trust_material_from_secret(secret(trust_policy, *certs))
    return await verify_notation(client, ref, parsed, stores)


@pytest.fixture
async def artifact(client: Registry, registry: str, tmp_path: Path) -> Reference:
    return await push_artifact(client, registry, tmp_path, "one")


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_valid_signature_verifies(
    kind: str, client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    sign, media_type = SIGNERS[kind]
    envelope = sign(pki["key"], pki["chain"], await target_of(client, artifact))
    await push_notation_signature(client, artifact, envelope, media_type)
    result = await verify(client, artifact, policy(), pki["ca"])
    assert "CN=signer" in result
    assert not result.startswith("not verified")


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_rsa_pss_signature_verifies(kind: str, client: Registry, artifact: Reference) -> None:
    ca, ca_key = make_ca(key="rsa3072")
    leaf, key = make_signing_cert(ca, ca_key, key="rsa3072")
    sign, media_type = SIGNERS[kind]
    envelope = sign(key, [leaf, ca], await target_of(client, artifact))
    await push_notation_signature(client, artifact, envelope, media_type)
    assert "CN=signer" in await verify(client, artifact, policy(), ca)


async def test_untrusted_ca_is_rejected(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    other, _ = make_ca("another CA")
    envelope = sign_jws(pki["key"], pki["chain"], await target_of(client, artifact))
    await push_notation_signature(client, artifact, envelope, JWS_MEDIA_TYPE)
    with pytest.raises(
        VerificationError, match=r"authenticity check failed.*not produced by a trusted"
    ):
        await verify(client, artifact, policy(), other)


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_tampered_payload_is_rejected(
    kind: str, client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    sign, media_type = SIGNERS[kind]
    target = await target_of(client, artifact)
    envelope = sign(pki["key"], pki["chain"], target)
    tampered = _tamper_cose_payload(envelope) if kind == "cose" else _tamper_jws_payload(envelope)
    await push_notation_signature(client, artifact, tampered, media_type, chain=pki["chain"])
    with pytest.raises(VerificationError, match=r"integrity check failed.*does not verify"):
        await verify(client, artifact, policy(), pki["ca"])


def _tamper_cose_payload(envelope: bytes) -> bytes:
    protected, unprotected, body, signature = cbor2.loads(envelope).value
    body = body.replace(b'"size":', b'"size":1')
    return bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), body, signature])))


def _tamper_jws_payload(envelope: bytes) -> bytes:
    doc = json.loads(envelope)
    doc["payload"] = doc["payload"][:-4] + ("AAAA" if doc["payload"][-4:] != "AAAA" else "BBBB")
    return json.dumps(doc).encode()


async def test_tampered_signature_is_rejected(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    doc = json.loads(sign_jws(pki["key"], pki["chain"], await target_of(client, artifact)))
    sig = bytearray(doc["signature"].encode())
    sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
    doc["signature"] = sig.decode()
    await push_notation_signature(
        client, artifact, json.dumps(doc).encode(), JWS_MEDIA_TYPE, chain=pki["chain"]
    )
    with pytest.raises(VerificationError, match=r"integrity check failed"):
        await verify(client, artifact, policy(), pki["ca"])


async def test_signature_copied_to_another_artifact_is_rejected(
    client: Registry, registry: str, tmp_path: Path, pki: dict[str, Any]
) -> None:
    first = await push_artifact(client, registry, tmp_path, "first")
    second = await push_artifact(client, registry, tmp_path, "second")
    envelope = sign_cose(pki["key"], pki["chain"], await target_of(client, first))
    await push_notation_signature(client, second, envelope, COSE_MEDIA_TYPE)
    with pytest.raises(VerificationError, match=r"content descriptor mismatch"):
        await verify(client, second, policy(), pki["ca"])


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_expired_signature_fails_strict_passes_permissive(
    kind: str, client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    sign, media_type = SIGNERS[kind]
    envelope = sign(
        pki["key"],
        pki["chain"],
        await target_of(client, artifact),
        signing_time=NOW - DAY / 2,
        expiry=NOW - datetime.timedelta(hours=1),
    )
    await push_notation_signature(client, artifact, envelope, media_type)
    with pytest.raises(VerificationError, match=r"expiry check failed.*expired"):
        await verify(client, artifact, policy("strict"), pki["ca"])
    assert "CN=signer" in await verify(client, artifact, policy("permissive"), pki["ca"])
    overridden = policy("strict", override={"expiry": "log"})
    assert "CN=signer" in await verify(client, artifact, overridden, pki["ca"])


async def test_trusted_identity_mismatch_is_rejected(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    envelope = sign_jws(pki["key"], pki["chain"], await target_of(client, artifact))
    await push_notation_signature(client, artifact, envelope, JWS_MEDIA_TYPE)
    good = policy(identities=["x509.subject: C=US, ST=WA, O=tidegate.test, CN=signer"])
    assert "CN=signer" in await verify(client, artifact, good, pki["ca"])
    bad = policy(identities=["x509.subject: C=US, ST=WA, O=someone-else.test"])
    with pytest.raises(VerificationError, match=r"trusted identity check failed"):
        await verify(client, artifact, bad, pki["ca"])
    # audit only logs authenticity: Flux reports that as ignored, not verified.
    audit = policy("audit", identities=["x509.subject: C=US, ST=WA, O=someone-else.test"])
    assert (await verify(client, artifact, audit, pki["ca"])).startswith("not verified")


async def test_signing_time_outside_certificate_validity_is_rejected(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    envelope = sign_cose(
        pki["key"], pki["chain"], await target_of(client, artifact), signing_time=NOW - 10 * DAY
    )
    await push_notation_signature(client, artifact, envelope, COSE_MEDIA_TYPE)
    with pytest.raises(VerificationError, match=r"authentic timestamp check failed.*signing time"):
        await verify(client, artifact, policy(), pki["ca"])


async def test_expired_certificate_is_rejected(client: Registry, artifact: Reference) -> None:
    ca, ca_key = make_ca()
    leaf, key = make_signing_cert(
        ca, ca_key, DEFAULT_SUBJECT, not_before=NOW - 10 * DAY, not_after=NOW - DAY
    )
    envelope = sign_jws(
        key, [leaf, ca], await target_of(client, artifact), signing_time=NOW - 2 * DAY
    )
    await push_notation_signature(client, artifact, envelope, JWS_MEDIA_TYPE)
    with pytest.raises(
        VerificationError, match=r"authentic timestamp check failed.*verification time"
    ):
        await verify(client, artifact, policy(), ca)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "not JSON"),
        (b"{}", "empty version"),
        (json.dumps({"version": "2.0", "trustPolicies": []}).encode(), "unsupported version"),
        (policy("paranoid"), "invalid signatureVerification level"),
        (policy(identities=["x509.subject: CN=missing-mandatory"]), "mandatory RDN"),
        (policy(override={"integrity": "log"}), "only authenticity"),
    ],
)
def test_bad_trust_policy_is_rejected(document: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=rf"invalid trust policy: .*{message}"):
        TrustPolicy.from_json(document)


def test_policy_selection_prefers_exact_scope() -> None:
    doc = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "global",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:a"],
                "trustedIdentities": ["*"],
            },
            {
                "name": "exact",
                "registryScopes": ["127.0.0.1:5000/apps/one"],
                "signatureVerification": {"level": "skip"},
            },
        ],
    }
    parsed = TrustPolicy.from_json(json.dumps(doc))
    assert parsed.statement_for("127.0.0.1:5000/apps/one").name == "exact"
    assert parsed.statement_for("127.0.0.1:5000/apps/two").name == "global"


def test_secret_layout_needs_policy_and_certificates(pki: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match=r"'trustpolicy.json' not found"):
        trust_material_from_secret({"ca.crt": pki["ca"].public_bytes(Encoding.PEM)})
    with pytest.raises(VerificationError, match=r"no certificates found"):
        trust_material_from_secret({"trustpolicy.json": policy(), "ca.txt": b"x"})
    _, stores = trust_material_from_secret(
        {"trustpolicy.json": policy(), "root.pem": pki["ca"].public_bytes(Encoding.DER)}
    )
    assert stores == {"ca:test": [pki["ca"]]}


async def test_no_signature_is_rejected(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    with pytest.raises(VerificationError, match=r"no notation signature found"):
        await verify(client, artifact, policy(), pki["ca"])


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_unsupported_critical_header_is_rejected(
    kind: str, client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    sign, media_type = SIGNERS[kind]
    envelope = sign(
        pki["key"],
        pki["chain"],
        await target_of(client, artifact),
        extra_protected={"io.example.unknown": "x"},
        extra_critical=["io.example.unknown"],
    )
    await push_notation_signature(client, artifact, envelope, media_type)
    with pytest.raises(
        VerificationError, match=r"unsupported critical header 'io.example.unknown'"
    ):
        await verify(client, artifact, policy(), pki["ca"])


@pytest.mark.parametrize(
    ("media_type", "make", "message"),
    [
        (JWS_MEDIA_TYPE, lambda env: b"\x00garbage", "JWS is not JSON"),
        (JWS_MEDIA_TYPE, lambda env: b'{"payload": "x"}', "not a flattened JWS"),
        (COSE_MEDIA_TYPE, lambda env: env[: len(env) // 2], "COSE is not CBOR"),
        (COSE_MEDIA_TYPE, lambda env: b"\xa1\x01\x02", "not a COSE_Sign1_Tagged"),
    ],
)
async def test_malformed_envelope_is_rejected(
    media_type: str,
    make: Callable[[bytes], bytes],
    message: str,
    client: Registry,
    artifact: Reference,
    pki: dict[str, Any],
) -> None:
    envelope = sign_cose(pki["key"], pki["chain"], await target_of(client, artifact))
    await push_notation_signature(client, artifact, make(envelope), media_type, chain=pki["chain"])
    with pytest.raises(VerificationError, match=rf"invalid signature envelope: {message}"):
        await verify(client, artifact, policy(), pki["ca"])


async def test_one_good_signature_among_bad_ones_verifies(
    client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    other_ca, other_key = make_ca("other")
    leaf, key = make_signing_cert(other_ca, other_key)
    target = await target_of(client, artifact)
    await push_notation_signature(
        client, artifact, sign_jws(key, [leaf, other_ca], target), JWS_MEDIA_TYPE
    )
    await push_notation_signature(
        client, artifact, sign_cose(pki["key"], pki["chain"], target), COSE_MEDIA_TYPE
    )
    assert "CN=signer" in await verify(client, artifact, policy(), pki["ca"])


async def test_skip_level_does_not_verify(client: Registry, artifact: Reference) -> None:
    doc = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "skip-it",
                "registryScopes": [artifact.name],
                "signatureVerification": {"level": "skip"},
            }
        ],
    }
    ca, _ = make_ca()
    result = await verify(client, artifact, json.dumps(doc).encode(), ca)
    assert result.startswith("not verified")


@pytest.mark.parametrize("kind", ["jws", "cose"])
async def test_signing_authority_scheme_uses_signing_authority_stores(
    kind: str, client: Registry, artifact: Reference, pki: dict[str, Any]
) -> None:
    sign, media_type = SIGNERS[kind]
    envelope = sign(
        pki["key"],
        pki["chain"],
        await target_of(client, artifact),
        scheme="notary.x509.signingAuthority",
    )
    await push_notation_signature(client, artifact, envelope, media_type)
    sa_policy = json.loads(policy())
    sa_policy["trustPolicies"][0]["trustStores"] = ["signingAuthority:sa"]
    parsed = TrustPolicy.from_json(json.dumps(sa_policy))
    result = await verify_notation(client, artifact, parsed, {"signingAuthority:sa": [pki["ca"]]})
    assert "CN=signer" in result
    # A notary.x509.signingAuthority signature is not checked against `ca` stores.
    with pytest.raises(VerificationError, match=r"no trusted certificates .* signingAuthority"):
        await verify(client, artifact, policy(), pki["ca"])


def test_skip_statement_with_trust_stores_is_cleaned_as_flux_does() -> None:
    doc = json.loads(policy("skip"))
    parsed = TrustPolicy.from_json(json.dumps(doc))
    assert parsed.statements[0].trust_stores == ()
