"""Sigstore bundles as cosign v3 attaches them: keyless and keyed verification, hostile input,
and the referrer manifest read back through the registry's referrers API (or its tag index)."""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import io
import json
import os
import random
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tidegate.oci import OCI_MANIFEST, Reference, Registry, sha256_digest
from tidegate.sign._bundle import (
    BUNDLE_ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    MAX_BUNDLE_SIZE,
    REFERRER_ARTIFACT_TYPES,
    bundle_layer,
    verify_bundle_with_keys,
)
from tidegate.sign._bundle_keyless import verify_bundle_keyless
from tidegate.sign._errors import VerificationError
from tidegate.sign._identity import Identity
from tidegate.sign._keys import load_private_key, load_public_keys
from tidegate.testing._sigstore_bundle import (
    SigstoreInstance,
    TransparencyLog,
    keyed_bundle,
    push_bundle_referrer,
    referrer_manifest,
    statement,
)

DIGEST = "sha256:" + hashlib.sha256(b"the signed manifest").hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"another manifest").hexdigest()
GITHUB = Identity(
    r"^https://token\.actions\.githubusercontent\.com$", r"^https://github\.com/acme/"
)


@pytest.fixture(scope="module")
def sigstore() -> SigstoreInstance:
    return SigstoreInstance.create()


@pytest.fixture(scope="module")
def root(sigstore: SigstoreInstance) -> bytes:
    return sigstore.trusted_root_json()


def edit(bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(bundle)
    change(document)
    return json.dumps(document).encode()


def rejected(call: Callable[[], None]) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    return str(info.value)


# -- keyless ------------------------------------------------------------------------------


def test_keyless_bundle_verifies(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    verify_bundle_keyless(bundle, DIGEST, root, [GITHUB])


def test_any_identity_may_match(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(
        DIGEST, subject="dev@acme.example", issuer="https://accounts.google.com"
    )
    other = Identity("github", "nobody")
    verify_bundle_keyless(bundle, DIGEST, root, [other, Identity("google", r"@acme\.example$")])


def test_identity_regexps_are_unanchored_as_in_go(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    verify_bundle_keyless(bundle, DIGEST, root, [Identity("actions", "release.yml")])


def test_subject_mismatch_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(
        DIGEST, subject="https://github.com/mallory/app/.github/workflows/x.yml@refs/heads/main"
    )
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "certificate identity mismatch" in message
    assert "mallory" in message


def test_issuer_mismatch_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST, issuer="https://evil.example")
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "certificate identity mismatch" in message
    assert "https://evil.example" in message


def test_invalid_go_regexp_is_a_verification_error(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    message = rejected(
        lambda: verify_bundle_keyless(bundle, DIGEST, root, [Identity("(?=x)", ".")])
    )
    assert "identity expression" in message


def test_no_identities_is_refused(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    assert "no identities" in rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, []))


def test_untrusted_ca_is_rejected(root: bytes) -> None:
    stranger = SigstoreInstance.create("someone else's fulcio")
    bundle = stranger.keyless_bundle(DIGEST)
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "certificate chain does not lead to a trusted root" in message


def test_public_good_root_rejects_a_private_ca(sigstore: SigstoreInstance) -> None:
    """None means Sigstore's public-good root, read offline from sigstore-python's package."""
    bundle = sigstore.keyless_bundle(DIGEST)
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, None, [GITHUB]))
    assert "certificate chain does not lead to a trusted root" in message


def test_tampered_payload_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)

    def swap(document: dict[str, Any]) -> None:
        document["dsseEnvelope"]["payload"] = base64.b64encode(statement(OTHER)).decode()

    message = rejected(lambda: verify_bundle_keyless(edit(bundle, swap), OTHER, root, [GITHUB]))
    assert "DSSE signature invalid" in message


def test_statement_for_another_artifact_is_rejected(
    sigstore: SigstoreInstance, root: bytes
) -> None:
    bundle = sigstore.keyless_bundle(OTHER)
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert f"signed subject {OTHER} is not the artifact {DIGEST}" in message


def test_attestation_is_not_a_signature(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST, predicate_type="https://slsa.dev/provenance/v1")
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "predicate type 'https://slsa.dev/provenance/v1'" in message


def test_log_entry_from_an_untrusted_log_is_rejected(
    sigstore: SigstoreInstance, root: bytes
) -> None:
    bundle = sigstore.keyless_bundle(DIGEST, log=TransparencyLog.create())
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "transparency log" in message
    assert "checkpoint" in message or "SET" in message


def test_forged_inclusion_promise_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    forged = TransparencyLog.create().entry(b"{}", 1)["inclusionPromise"]

    def forge(document: dict[str, Any]) -> None:
        document["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"] = forged

    message = rejected(lambda: verify_bundle_keyless(edit(bundle, forge), DIGEST, root, [GITHUB]))
    assert "inclusion promise (SET) invalid" in message


def test_broken_inclusion_proof_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)

    def break_proof(document: dict[str, Any]) -> None:
        proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        proof["rootHash"] = base64.b64encode(bytes(32)).decode()

    message = rejected(
        lambda: verify_bundle_keyless(edit(bundle, break_proof), DIGEST, root, [GITHUB])
    )
    assert "inclusion proof invalid" in message


def test_missing_log_entry_is_rejected(sigstore: SigstoreInstance, root: bytes) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)

    def drop(document: dict[str, Any]) -> None:
        document["verificationMaterial"]["tlogEntries"] = []

    message = rejected(lambda: verify_bundle_keyless(edit(bundle, drop), DIGEST, root, [GITHUB]))
    assert "log entry" in message


def test_certificate_expired_at_signing_time_is_rejected(
    sigstore: SigstoreInstance, root: bytes
) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    bundle = sigstore.keyless_bundle(DIGEST, integrated_at=later)
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, root, [GITHUB]))
    assert "signing time" in message


# -- keyed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: ed25519.Ed25519PrivateKey.generate(),
    ],
    ids=["ecdsa-p256", "rsa", "ed25519"],
)
def test_keyed_bundle_verifies(make: Callable[[], Any]) -> None:
    key = make()
    verify_bundle_with_keys(keyed_bundle(DIGEST, key), DIGEST, [key.public_key()])


def test_any_key_may_match() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    others = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(2)]
    verify_bundle_with_keys(keyed_bundle(DIGEST, key), DIGEST, [*others, key.public_key()])


def test_keyed_bundle_with_wrong_key_is_rejected() -> None:
    bundle = keyed_bundle(DIGEST, ec.generate_private_key(ec.SECP256R1()))
    wrong = ec.generate_private_key(ec.SECP256R1()).public_key()
    message = rejected(lambda: verify_bundle_with_keys(bundle, DIGEST, [wrong]))
    assert "DSSE signature does not verify with the given public key" in message


def test_tampered_keyed_bundle_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = keyed_bundle(DIGEST, key)

    def swap(document: dict[str, Any]) -> None:
        document["dsseEnvelope"]["payload"] = base64.b64encode(statement(OTHER)).decode()

    message = rejected(
        lambda: verify_bundle_with_keys(edit(bundle, swap), OTHER, [key.public_key()])
    )
    assert "DSSE signature does not verify" in message


def test_keyed_statement_for_another_artifact_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    message = rejected(
        lambda: verify_bundle_with_keys(keyed_bundle(OTHER, key), DIGEST, [key.public_key()])
    )
    assert "is not the artifact" in message


def test_keyed_payload_type_must_be_in_toto() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = keyed_bundle(DIGEST, key)

    def retype(document: dict[str, Any]) -> None:
        document["dsseEnvelope"]["payloadType"] = "text/plain"

    # The signature covers the payload type, so a retyped envelope fails the signature first.
    assert "DSSE signature" in rejected(
        lambda: verify_bundle_with_keys(edit(bundle, retype), DIGEST, [key.public_key()])
    )


# -- hostile input ------------------------------------------------------------------------

MALFORMED = {
    "not json": b"{nope",
    "a list": b"[]",
    "no media type": b"{}",
    "other media type": json.dumps({"mediaType": "application/json"}).encode(),
    "no content": json.dumps({"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": {}}).encode(),
    "message signature": json.dumps(
        {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {},
            "messageSignature": {"signature": "AAAA"},
        }
    ).encode(),
    "envelope not an object": json.dumps(
        {"mediaType": BUNDLE_MEDIA_TYPE, "dsseEnvelope": 3}
    ).encode(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "huge": b" " * (MAX_BUNDLE_SIZE + 1),
    "not utf-8": b"\xff\xfe\x00",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bundles_are_rejected(data: bytes, root: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert rejected(lambda: verify_bundle_keyless(data, DIGEST, root, [GITHUB])).startswith(
        "sigstore bundle"
    )
    assert rejected(lambda: verify_bundle_with_keys(data, DIGEST, [key.public_key()])).startswith(
        "sigstore bundle"
    )


def test_malformed_trusted_root_is_rejected(sigstore: SigstoreInstance) -> None:
    bundle = sigstore.keyless_bundle(DIGEST)
    message = rejected(lambda: verify_bundle_keyless(bundle, DIGEST, b'{"mediaType": 1}', [GITHUB]))
    assert message.startswith("trusted root: malformed")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    if value is _DROP:
        del document[path[-1]]
    else:
        document[path[-1]] = value


_DROP = object()
_JUNK = [_DROP, None, 0, -1, "", "!!", "AAAA", [], {}, "9" * 40, True]


def test_every_field_mangled_is_a_verification_error(
    sigstore: SigstoreInstance, root: bytes
) -> None:
    """Replace each field of a valid bundle with junk: always a VerificationError, never a crash."""
    key = ec.generate_private_key(ec.SECP256R1())
    rng = random.Random(7)
    keyless = sigstore.keyless_bundle(DIGEST)
    keyed = keyed_bundle(DIGEST, key)
    cases: list[tuple[bytes, Callable[[bytes], None], Callable[[tuple[Any, ...]], bool]]] = [
        (
            keyless,
            lambda b: verify_bundle_keyless(b, DIGEST, root, [GITHUB]),
            # RFC 3161 timestamps are optional next to the log's promise.
            lambda path: path[-1] == "timestampVerificationData",
        ),
        (
            keyed,
            lambda b: verify_bundle_with_keys(b, DIGEST, [key.public_key()]),
            # With a key, nothing in the verification material is trusted or needed.
            lambda path: len(path) > 1 and path[0] == "verificationMaterial",
        ),
    ]
    for bundle, verify, unchecked in cases:
        original = json.loads(bundle)
        for path in _paths(original):
            for junk in rng.sample(_JUNK, 4):
                document = json.loads(bundle)
                _set(document, path, junk)
                if document == original:
                    continue
                try:
                    verify(json.dumps(document).encode())
                except VerificationError:
                    continue
                assert unchecked(path), f"{path} = {junk!r} accepted"


# -- registry -----------------------------------------------------------------------------


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg


async def _push_image(client: Registry, repository: str, layer: bytes = b"some layer") -> str:
    config = b'{"architecture":"amd64","os":"linux"}'
    for blob in (config, layer):
        await client.push_blob(repository, sha256_digest(blob), len(blob), blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return await client.push_manifest(
        Reference(client.host, repository, tag="v1"), manifest, OCI_MANIFEST
    )


async def _bundles(client: Registry, repository: str, digest: str) -> list[bytes]:
    """Bundles that refer to `digest`, found as a verifier must find cosign's."""
    found = []
    for descriptor in await client.referrers(repository, digest):
        if descriptor.get("artifactType") not in REFERRER_ARTIFACT_TYPES:
            continue
        ref = Reference(client.host, repository, digest=descriptor["digest"])
        manifest = json.loads((await client.fetch_manifest(ref, (OCI_MANIFEST,))).data)
        assert manifest["subject"]["digest"] == digest
        layer = bundle_layer(manifest)
        if layer is None:
            continue
        out = io.BytesIO()
        await client.fetch_blob(repository, layer["digest"], out)
        found.append(out.getvalue())
    return found


@pytest.mark.registry
async def test_bundle_referrer_round_trips_through_the_registry(
    client: Registry, sigstore: SigstoreInstance, root: bytes
) -> None:
    repository = f"sign/bundle-{random.randrange(1 << 30)}"
    digest = await _push_image(client, repository)
    bundle = sigstore.keyless_bundle(digest)
    referrer = await push_bundle_referrer(client, repository, digest, bundle)

    manifest = json.loads(
        (await client.fetch_manifest(Reference(client.host, repository, digest=referrer))).data
    )
    assert manifest["artifactType"] == BUNDLE_ARTIFACT_TYPE
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == (
        COSIGN_SIGN_PREDICATE_TYPE
    )
    assert [layer["mediaType"] for layer in manifest["layers"]] == [BUNDLE_MEDIA_TYPE]
    assert await _bundles(client, repository, digest) == [bundle]
    verify_bundle_keyless(bundle, digest, root, [GITHUB])

    # A second signature is appended, not swapped in (referrers API or the tag index alike).
    key = ec.generate_private_key(ec.SECP256R1())
    second = keyed_bundle(digest, key)
    await push_bundle_referrer(client, repository, digest, second)
    assert sorted(await _bundles(client, repository, digest)) == sorted([bundle, second])
    assert not await _bundles(client, repository, OTHER)


def test_bundle_layer_wants_a_bundle_referrer() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 1}
    manifest = json.loads(referrer_manifest(b"{}", subject))
    assert bundle_layer(manifest) == manifest["layers"][0]
    notation = {**manifest, "artifactType": "application/vnd.cncf.notary.signature"}
    notation["config"] = {**manifest["config"], "artifactType": None}
    assert bundle_layer(notation) is None
    sbom = {**manifest, "layers": [{"mediaType": "application/spdx+json"}]}
    assert bundle_layer(sbom) is None
    assert bundle_layer({**manifest, "layers": "x"}) is None


# -- the real cosign ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cosign() -> str:
    from tidegate.testing._binaries import cosign_binary

    try:
        return str(cosign_binary(lambda _msg: None))
    except Exception as exc:  # no cached binary and no way to build one here
        pytest.skip(f"cosign v3 not available: {exc}")


@pytest.mark.registry
async def test_real_cosign_v3_bundle_verifies_with_its_key(
    client: Registry, registry: str, cosign: str, tmp_path: Path
) -> None:
    """`cosign sign --key` (v3, bundle format by default) attaches what verify_bundle_with_keys
    accepts, through the registry's referrers API or its tag index."""
    repository = f"sign/real-cosign-{random.randrange(1 << 30)}"
    digest = await _push_image(client, repository)
    env = {**os.environ, "COSIGN_PASSWORD": "tidegate", "HOME": str(tmp_path)}
    run = functools.partial(
        subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    made = run([cosign, "generate-key-pair"])
    assert made.returncode == 0, made.stderr
    signed = run(
        [cosign, "sign", "--key", "cosign.key", "--tlog-upload=false", "--use-signing-config=false",
         "--allow-http-registry", "--yes", f"{registry}/{repository}@{digest}"]
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    [public] = load_public_keys((tmp_path / "cosign.pub").read_bytes())

    [bundle] = await _bundles(client, repository, digest)
    statement_ = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    assert statement_["predicateType"] == COSIGN_SIGN_PREDICATE_TYPE

    verify_bundle_with_keys(bundle, digest, [public])
    other = "sha256:" + hashlib.sha256(b"not it").hexdigest()
    assert "is not the artifact" in rejected(
        lambda: verify_bundle_with_keys(bundle, other, [public])
    )
    wrong = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert "does not verify" in rejected(lambda: verify_bundle_with_keys(bundle, digest, [wrong]))


@pytest.mark.registry
async def test_real_cosign_v3_verifies_a_pushed_keyed_bundle(
    client: Registry, registry: str, cosign: str, tmp_path: Path
) -> None:
    """The referrer `push_bundle_referrer` writes is one real `cosign verify --key` finds."""
    repository = f"sign/cosign-verifies-{random.randrange(1 << 30)}"
    digest = await _push_image(client, repository)
    env = {**os.environ, "COSIGN_PASSWORD": "tidegate", "HOME": str(tmp_path)}
    run = functools.partial(
        subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    made = run([cosign, "generate-key-pair"])
    assert made.returncode == 0, made.stderr
    key = load_private_key((tmp_path / "cosign.key").read_bytes(), b"tidegate")
    await push_bundle_referrer(client, repository, digest, keyed_bundle(digest, key))

    verify = [cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
              "--allow-http-registry", f"{registry}/{repository}@{digest}"]  # fmt: skip
    verified = run(verify)
    assert verified.returncode == 0, verified.stderr

    # A bundle signed for another image does not verify for this one.
    other_repository = f"{repository}-other"
    other = await _push_image(client, other_repository, b"another layer")
    assert other != digest
    await push_bundle_referrer(client, other_repository, other, keyed_bundle(digest, key))
    refused = run([*verify[:-1], f"{registry}/{other_repository}@{other}"])
    assert refused.returncode != 0
