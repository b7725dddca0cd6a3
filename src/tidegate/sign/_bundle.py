"""Sigstore bundles: the signatures cosign v3 attaches to an image as OCI referrers.

`cosign sign` (v3, `--new-bundle-format` by default) signs an in-toto statement whose one
subject is the image manifest digest and whose predicate type is
`https://sigstore.dev/cosign/sign/v1`, wraps it in a DSSE envelope, and stores the v0.3 bundle
as the single layer of a manifest with `artifactType` = the bundle media type and `subject` =
the signed manifest (cosign `cmd/cosign/cli/sign/sign.go` `signDigestBundle`,
`pkg/oci/remote/write.go` `WriteAttestationNewBundleFormat`; `specs/BUNDLE_SPEC.md`).

Keyless bundles are checked by sigstore-python (chain to the trusted root at signing time,
SCT, log inclusion proof, checkpoint and promise, DSSE signature) under an identity policy
with Go-regexp semantics; keyed bundles are checked here against the given public keys. Both
then check that the statement names the artifact.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ._errors import VerificationError
from ._keys import PublicKey, verify_with_any

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# The referrer's artifactType is the bundle media type; older writers spelled v0.3 this way.
BUNDLE_ARTIFACT_TYPE = BUNDLE_MEDIA_TYPE
BUNDLE_ARTIFACT_TYPES = frozenset(
    {BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3"}
)
# On registries without the referrers API, cosign's `sha256-<hex>` tag index is written by
# go-containerregistry, which knows no manifest artifactType and records the config media
# type instead (seen with cosign v3.0.6 against distribution 2.8): a bundle referrer may be
# listed as the empty type, so candidates are these and the manifest itself decides.
EMPTY_ARTIFACT_TYPE = "application/vnd.oci.empty.v1+json"
REFERRER_ARTIFACT_TYPES = BUNDLE_ARTIFACT_TYPES | {EMPTY_ARTIFACT_TYPE}
COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_STATEMENT_TYPES = frozenset({IN_TOTO_STATEMENT_V1, "https://in-toto.io/Statement/v0.1"})
_BUNDLE_MEDIA_TYPES = frozenset(
    {
        BUNDLE_MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    }
)

# A cosign signature bundle is a few KiB (a certificate, a log entry, a tiny statement).
MAX_BUNDLE_SIZE = 4 << 20

_Predicates = Collection[str]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def bundle_layer(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The bundle layer's descriptor when `manifest` is a Sigstore bundle referrer, else None.

    A referrer is a bundle when its artifactType (or, from writers that put it there, its
    config's) is a bundle media type and its first layer is a bundle.
    """
    config = manifest.get("config")
    kinds = {
        manifest.get("artifactType"),
        config.get("artifactType") if isinstance(config, dict) else None,
    }
    if not any(isinstance(k, str) and k in BUNDLE_ARTIFACT_TYPES for k in kinds):
        return None
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
        return None
    media_type = layers[0].get("mediaType")
    if not isinstance(media_type, str) or media_type not in _BUNDLE_MEDIA_TYPES:
        return None
    layer: Mapping[str, Any] = layers[0]
    return layer


# -- keyed --------------------------------------------------------------------------------


def verify_bundle_with_keys(
    bundle_json: bytes,
    digest: str,
    public_keys: Sequence[PublicKey],
    *,
    predicate_types: _Predicates = (COSIGN_SIGN_PREDICATE_TYPE,),
) -> None:
    """Verify a bundle `cosign sign --key` wrote for the manifest `digest` with any of the keys.

    The bundle's verification material (a key hint, or a certificate for the key) is not
    trusted: the DSSE signature must verify with one of `public_keys`. Transparency log
    entries, when present, are not checked — `cosign sign --key --tlog-upload=false` writes
    none, and with a key the signature alone is the proof, as with `cosign verify --key
    --insecure-ignore-tlog`.
    """
    if not public_keys:
        raise VerificationError("sigstore bundle: no public keys to verify with")
    document = _parse(bundle_json)
    if not isinstance(document.get("verificationMaterial"), dict):
        raise VerificationError("sigstore bundle: malformed: no verificationMaterial")
    envelope = document.get("dsseEnvelope")
    if envelope is None:
        raise VerificationError(_no_dsse(document))
    if not isinstance(envelope, dict):
        raise VerificationError("sigstore bundle: malformed: dsseEnvelope is not an object")
    payload_type = envelope.get("payloadType")
    payload = _b64field(envelope, "payload", "dsseEnvelope")
    signatures = envelope.get("signatures")
    if not isinstance(payload_type, str):
        raise VerificationError("sigstore bundle: malformed: dsseEnvelope has no payloadType")
    if not isinstance(signatures, list) or not signatures:
        raise VerificationError("sigstore bundle: malformed: dsseEnvelope has no signatures")
    signed = pae(payload_type, payload)
    for entry in signatures:
        if not isinstance(entry, dict):
            raise VerificationError("sigstore bundle: malformed: a DSSE signature is not an object")
        signature = _b64field(entry, "sig", "dsseEnvelope signature")
        try:
            verify_with_any(public_keys, signature, signed)
        except VerificationError:
            continue
        break
    else:
        keys = "the given public key" if len(public_keys) == 1 else "any of the public keys"
        raise VerificationError(f"sigstore bundle: DSSE signature does not verify with {keys}")
    _check_statement(payload_type, payload, digest, predicate_types)


# -- shared -------------------------------------------------------------------------------


def _parse(bundle_json: bytes) -> dict[str, Any]:
    if len(bundle_json) > MAX_BUNDLE_SIZE:
        raise VerificationError(
            f"sigstore bundle: {len(bundle_json)} bytes, larger than {MAX_BUNDLE_SIZE}"
        )
    try:
        document = json.loads(bundle_json)
    except (ValueError, RecursionError) as exc:
        raise VerificationError(f"sigstore bundle: not JSON: {_describe(exc)}") from None
    if not isinstance(document, dict):
        raise VerificationError("sigstore bundle: malformed: not a JSON object")
    media_type = document.get("mediaType")
    if not isinstance(media_type, str) or media_type not in _BUNDLE_MEDIA_TYPES:
        raise VerificationError(f"sigstore bundle: unsupported media type {media_type!r}")
    return document


def _no_dsse(document: Mapping[str, Any]) -> str:
    if "messageSignature" in document:
        # A message signature covers a payload the bundle does not carry; cosign v3 signs
        # images only as DSSE statements, so nothing here could say which image was signed.
        return (
            "sigstore bundle: holds a message signature, not a DSSE statement naming the "
            "image; cosign signs images with DSSE in-toto statements"
        )
    return "sigstore bundle: malformed: no dsseEnvelope"


def _b64field(obj: Mapping[str, Any], key: str, where: str) -> bytes:
    value = obj.get(key)
    if not isinstance(value, str):
        raise VerificationError(f"sigstore bundle: malformed: {where} has no {key}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # protojson accepts URL-safe base64 too
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise VerificationError(
                f"sigstore bundle: malformed: {where} {key} is not base64"
            ) from None


def _check_statement(
    payload_type: str, payload: bytes, digest: str, predicate_types: _Predicates
) -> None:
    """The signed statement is cosign's signature claim and names `digest` as its subject."""
    algorithm, _, expected = digest.partition(":")
    if algorithm != "sha256" or len(expected) != 64:
        raise VerificationError(f"sigstore bundle: artifact digest {digest!r} is not sha256")
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"sigstore bundle: DSSE payload type {payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE}"
        )
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise VerificationError("sigstore bundle: signed statement is not JSON") from None
    kind = statement.get("_type") if isinstance(statement, dict) else None
    if not isinstance(kind, str) or kind not in _STATEMENT_TYPES:
        raise VerificationError("sigstore bundle: signed payload is not an in-toto statement")
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str) or predicate_type not in predicate_types:
        raise VerificationError(
            f"sigstore bundle: signed statement has predicate type {predicate_type!r}, "
            f"not a signature ({', '.join(sorted(predicate_types))})"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("sigstore bundle: signed statement has no subject")
    named: list[str] = []
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        value = digests.get("sha256") if isinstance(digests, dict) else None
        if not isinstance(value, str):
            continue
        if value.lower() == expected.lower():
            return
        named.append(f"sha256:{value}")
    raise VerificationError(
        f"sigstore bundle: signed subject {', '.join(named) or 'without a sha256 digest'} "
        f"is not the artifact {digest}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _describe(exc: BaseException) -> str:
    text = _first_line(exc)
    return text[:300] + ("…" if len(text) > 300 else "")
