"""cosign keyed signatures against the real registry: sign, verify, and every way to fail."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tidegate import oci
from tidegate.oci import OCI_MANIFEST, Reference, Registry, sha256_digest
from tidegate.sign import (
    CosignPolicy,
    VerificationError,
    generate_key_pair,
    load_private_key,
    load_public_keys,
    sign_artifact,
    signature_tag,
    simple_signing_payload,
    verify_cosign,
)
from tidegate.sign._cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING
from tidegate.sign._keys import public_pem
from tidegate.testing import Environment

pytestmark = pytest.mark.registry


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg


@pytest.fixture(scope="module")
def keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    return ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())


async def _push(client: Registry, registry: str, name: str, content: str, tmp_path: Path) -> str:
    folder = tmp_path / name.replace("/", "_").replace(":", "_")
    folder.mkdir()
    (folder / "app.yaml").write_text(content)
    result = await oci.push(client, Reference.parse(f"{registry}/{name}"), folder)
    return result.digest


def _policy(*private: ec.EllipticCurvePrivateKey) -> CosignPolicy:
    return CosignPolicy(keys=[k.public_key() for k in private])


async def test_sign_then_verify(client: Registry, registry: str, tmp_path: Path, keys) -> None:
    digest = await _push(client, registry, "signed/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/signed/app:v1")
    signed, _ = await sign_artifact(client, ref, keys[0])
    assert signed == digest
    verified = await verify_cosign(client, ref, _policy(keys[0]))
    assert verified.digest == digest
    # By digest as well, and with the right key among several.
    verified = await verify_cosign(client, ref.with_digest(digest), _policy(keys[1], keys[0]))
    assert verified.digest == digest


async def test_payload_is_cosigns_simple_signing_format(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    digest = await _push(client, registry, "format/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/format/app:v1")
    await sign_artifact(client, ref, keys[0], {"ci": "run-7"})
    manifest = await client.fetch_manifest(ref.with_tag(signature_tag(digest)))
    assert signature_tag(digest) == f"sha256-{digest.split(':')[1]}.sig"
    assert manifest.media_type == OCI_MANIFEST
    [layer] = json.loads(manifest.data)["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING
    out = io.BytesIO()
    await client.fetch_blob(ref.repository, layer["digest"], out)
    assert out.getvalue() == (
        b'{"critical":{"identity":{"docker-reference":"' + ref.name.encode() + b'"},'
        b'"image":{"docker-manifest-digest":"' + digest.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":{"ci":"run-7"}}'
    )
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    keys[0].public_key().verify(signature, out.getvalue(), ec.ECDSA(__import__(
        "cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()))  # fmt: skip


async def test_signatures_are_appended_not_replaced(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    digest = await _push(client, registry, "append/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/append/app:v1")
    await sign_artifact(client, ref, keys[0])
    await sign_artifact(client, ref, keys[1])
    await sign_artifact(client, ref, keys[1], {"again": "yes"})
    manifest = await client.fetch_manifest(ref.with_tag(signature_tag(digest)))
    assert len(json.loads(manifest.data)["layers"]) == 3
    for key in keys:
        assert (await verify_cosign(client, ref, _policy(key))).digest == digest


async def test_wrong_key_is_rejected(client: Registry, registry: str, tmp_path: Path, keys) -> None:
    await _push(client, registry, "wrongkey/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/wrongkey/app:v1")
    await sign_artifact(client, ref, keys[0])
    with pytest.raises(VerificationError, match="does not verify with the given public key"):
        await verify_cosign(client, ref, _policy(keys[1]))


async def test_unsigned_artifact_is_rejected(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    digest = await _push(client, registry, "unsigned/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/unsigned/app:v1")
    with pytest.raises(VerificationError, match=f"no cosign signature found for .*{digest}"):
        await verify_cosign(client, ref, _policy(keys[0]))


async def test_tampered_payload_is_rejected(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    """A payload rewritten (and its blob re-pushed under its new digest) keeps the old
    signature, which no longer verifies."""
    digest = await _push(client, registry, "tampered/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/tampered/app:v1")
    await sign_artifact(client, ref, keys[0])
    sig_ref = ref.with_tag(signature_tag(digest))
    manifest = json.loads((await client.fetch_manifest(sig_ref)).data)
    payload = simple_signing_payload(ref, digest, {"tampered": "yes"})
    await client.push_blob(ref.repository, sha256_digest(payload), len(payload), payload)
    manifest["layers"][0].update(digest=sha256_digest(payload), size=len(payload))
    await client.push_manifest(sig_ref, json.dumps(manifest).encode(), OCI_MANIFEST)
    with pytest.raises(VerificationError, match=r"signature 1 .*does not verify"):
        await verify_cosign(client, ref, _policy(keys[0]))


async def test_signature_copied_to_another_artifact_is_rejected(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    good = await _push(client, registry, "copied/app:good", "a: 1\n", tmp_path)
    evil = await _push(client, registry, "copied/app:evil", "a: 666\n", tmp_path)
    good_ref = Reference.parse(f"{registry}/copied/app:good")
    await sign_artifact(client, good_ref, keys[0])
    sig = await client.fetch_manifest(good_ref.with_tag(signature_tag(good)))
    await client.push_manifest(good_ref.with_tag(signature_tag(evil)), sig.data, OCI_MANIFEST)
    evil_ref = Reference.parse(f"{registry}/copied/app:evil")
    with pytest.raises(VerificationError, match=rf"payload signs {good}, not this artifact"):
        await verify_cosign(client, evil_ref, _policy(keys[0]))


async def test_signature_layer_with_wrong_blob_digest_is_rejected(
    client: Registry, registry: str, tidegate_env: Environment, tmp_path: Path, keys
) -> None:
    """The registry answers 200 with bytes that do not hash to the layer's digest (the blob
    was changed on its disk): the check fails on the digest, before any signature check."""
    digest = await _push(client, registry, "blobdigest/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/blobdigest/app:v1")
    await sign_artifact(client, ref, keys[0])
    sig_ref = ref.with_tag(signature_tag(digest))
    [layer] = json.loads((await client.fetch_manifest(sig_ref)).data)["layers"]
    stored = tidegate_env.registry_blob(layer["digest"])
    stored.write_bytes(stored.read_bytes().replace(b"cosign container", b"cosign CONTAINER"))
    with pytest.raises(
        VerificationError, match=r"signature 1 .*payload blob: blob sha256:.* hashes to"
    ):
        await verify_cosign(client, ref, _policy(keys[0]))


async def test_one_good_signature_among_bad_ones_verifies(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    digest = await _push(client, registry, "mixed/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/mixed/app:v1")
    await sign_artifact(client, ref, keys[1])
    await sign_artifact(client, ref, keys[0])
    assert (await verify_cosign(client, ref, _policy(keys[0]))).digest == digest
    with pytest.raises(VerificationError) as failed:
        await verify_cosign(client, ref, _policy(ec.generate_private_key(ec.SECP256R1())))
    assert "signature 1" in str(failed.value)
    assert "signature 2" in str(failed.value)


async def test_oversized_payload_is_refused_before_download(
    client: Registry, registry: str, tmp_path: Path, keys
) -> None:
    digest = await _push(client, registry, "huge/app:v1", "a: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/huge/app:v1")
    await sign_artifact(client, ref, keys[0])
    sig_ref = ref.with_tag(signature_tag(digest))
    manifest = json.loads((await client.fetch_manifest(sig_ref)).data)
    manifest["layers"][0]["size"] = 1 << 30
    await client.push_manifest(sig_ref, json.dumps(manifest).encode(), OCI_MANIFEST)
    with pytest.raises(VerificationError, match="payload size 1073741824"):
        await verify_cosign(client, ref, _policy(keys[0]))


# -- key files ----------------------------------------------------------------------------


def test_key_pair_round_trip_and_wrong_password() -> None:
    from tidegate.sign import KeyFileError

    pair = generate_key_pair(b"s3cret")
    assert pair.private_pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    key = load_private_key(pair.private_pem, b"s3cret")
    assert public_pem(key.public_key()) == pair.public_pem
    [public] = load_public_keys(pair.public_pem)
    assert public.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    with pytest.raises(KeyFileError, match="wrong password") as failed:
        load_private_key(pair.private_pem, b"guess")
    assert "guess" not in str(failed.value)
    assert "s3cret" not in str(failed.value)


def test_encrypted_key_with_unexpected_scrypt_cost_is_refused() -> None:
    """Raising N would make reading the key arbitrarily slow: refused as cosign does."""
    from tidegate.sign import KeyFileError
    from tidegate.sign._keys import _PEM_BLOCK, _pem

    pair = generate_key_pair(b"pw")
    match = _PEM_BLOCK.search(pair.private_pem)
    assert match is not None
    body = json.loads(base64.b64decode(b"".join(match.group(2).split())))
    body["kdf"]["params"]["N"] = 1 << 24
    hostile = _pem("ENCRYPTED SIGSTORE PRIVATE KEY", json.dumps(body).encode())
    with pytest.raises(KeyFileError, match="unsupported scrypt parameters"):
        load_private_key(hostile, b"pw")
    for garbage in (b"not pem", _pem("ENCRYPTED SIGSTORE PRIVATE KEY", b"{]"),
                    _pem("OPENSSH PRIVATE KEY", b"x")):  # fmt: skip
        with pytest.raises(KeyFileError):
            load_private_key(garbage, b"pw")


def test_plain_pem_keys_are_accepted() -> None:
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        loaded = load_private_key(pem, None)
        assert loaded.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_cosign_key_file_reads(tmp_path: Path) -> None:
    """A key written by `cosign generate-key-pair` (v3.0.6, password "tidegate")."""
    fixture = Path(__file__).parent / "testdata" / "cosign.key"
    key = load_private_key(fixture.read_bytes(), b"tidegate")
    [public] = load_public_keys((fixture.parent / "cosign.pub").read_bytes())
    assert public.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


# -- keyless, through the registry -------------------------------------------------------------

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
GITHUB = "https://token.actions.githubusercontent.com"


async def test_keyless_signature_without_log_proof_is_rejected(
    client: Registry, registry: str, tmp_path: Path
) -> None:
    from tidegate.sign import Identity
    from tidegate.sign._cosign import (
        CERTIFICATE_ANNOTATION,
        CHAIN_ANNOTATION,
        append_signature,
    )
    from tidegate.testing._sigstore import (
        TestCA,
        TestLog,
        push_keyless_signature,
        trusted_root_json,
    )

    ca, log = TestCA(), TestLog()
    policy = CosignPolicy(
        identities=[Identity(issuer=GITHUB, subject="^https://github.com/acme/")],
        trusted_root=trusted_root_json(ca, log),
    )
    digest = await _push(client, registry, "keyless/proof:v1", "k: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/keyless/proof:v1")
    certificate = ca.issue(WORKFLOW, GITHUB)
    payload = simple_signing_payload(ref, digest)
    await append_signature(client, ref, digest, payload, {
        SIGNATURE_ANNOTATION: base64.b64encode(certificate.sign(payload)).decode(),
        CERTIFICATE_ANNOTATION: certificate.cert_pem.decode(),
        CHAIN_ANNOTATION: certificate.chain_pem.decode(),
    })  # fmt: skip
    with pytest.raises(VerificationError, match="no transparency log proof"):
        await verify_cosign(client, ref, policy)
    # The same certificate with its log proof verifies; a certificate from another CA does not.
    await push_keyless_signature(client, ref, digest, certificate, log)
    verified = await verify_cosign(client, ref, policy)
    assert f"signed keyless by '{WORKFLOW}'" in verified.description
    other = await _push(client, registry, "keyless/proof:other", "k: 2\n", tmp_path)
    other_ref = Reference.parse(f"{registry}/keyless/proof:other")
    await push_keyless_signature(client, other_ref, other, TestCA().issue(WORKFLOW, GITHUB), log)
    with pytest.raises(VerificationError, match="trusted root"):
        await verify_cosign(client, other_ref, policy)


async def test_keyless_sigstore_bundle_found_as_a_referrer(
    client: Registry, registry: str, tmp_path: Path
) -> None:
    from tidegate.sign import Identity
    from tidegate.testing._sigstore_bundle import (
        DEFAULT_ISSUER,
        DEFAULT_SUBJECT,
        SigstoreInstance,
        push_bundle_referrer,
    )

    sigstore = SigstoreInstance.create()
    digest = await _push(client, registry, "keyless/bundle:v1", "b: 1\n", tmp_path)
    ref = Reference.parse(f"{registry}/keyless/bundle:v1")
    await push_bundle_referrer(client, ref.repository, digest, sigstore.keyless_bundle(digest))
    identity = Identity(issuer=DEFAULT_ISSUER, subject=DEFAULT_SUBJECT)
    root = sigstore.trusted_root_json()
    verified = await verify_cosign(
        client, ref, CosignPolicy(identities=[identity], trusted_root=root)
    )
    assert verified.description.endswith("verified keyless")
    stranger = Identity(issuer=DEFAULT_ISSUER, subject="^https://github.com/stranger/")
    with pytest.raises(VerificationError, match=r"sigstore bundle .*identity mismatch"):
        await verify_cosign(client, ref, CosignPolicy(identities=[stranger], trusted_root=root))
