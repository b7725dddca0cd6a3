"""cosign signatures of OCI artifacts: signing with a key, and verification.

Two places hold cosign signatures of the manifest `sha256:<hex>` of a repository:
- the classic one, the manifest tagged `sha256-<hex>.sig`: one layer per signature, each a
  "simple signing" payload naming the signed digest, with the signature (and, keyless, the
  certificate, its chain and the transparency log's signed entry timestamp) in the layer's
  annotations;
- Sigstore bundles (what cosign v3 writes by default), manifests that refer to the signed one
  through the referrers API (or its `sha256-<hex>` tag fallback).

Verification succeeds when any one signature passes every check; otherwise the error lists,
signature by signature, which check failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from tidegate import oci
from tidegate.oci import OCI_MANIFEST, Reference, Registry, sha256_digest

from ._errors import VerificationError
from ._identity import Identity
from ._keys import PrivateKey, PublicKey, key_id, sign, verify_with_any

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# Hostile-registry bounds: a signature payload is a few hundred bytes.
MAX_PAYLOAD = 1 << 20
MAX_SIGNATURES = 64


@dataclass(frozen=True)
class Signature:
    """One layer of a `.sig` manifest: the payload and what its annotations carry."""

    index: int
    payload: bytes
    signature: bytes
    certificate: bytes | None = None
    chain: bytes | None = None
    bundle: Mapping[str, Any] | None = None
    # Why the layer could not be read (bad blob digest, bad annotation), if it could not.
    error: str | None = None


@dataclass(frozen=True)
class CosignPolicy:
    """Who may have signed: public keys (keyed), or identities under a trusted root (keyless).

    `trusted_root` is a sigstore `trusted_root.json`; None means Sigstore's public-good
    instance, from the copy sigstore-python ships (no network).
    """

    keys: Sequence[PublicKey] = ()
    identities: Sequence[Identity] = ()
    trusted_root: bytes | None = None

    def __post_init__(self) -> None:
        if not self.keys and not self.identities:
            raise ValueError("a cosign policy needs public keys or keyless identities")


@dataclass
class Verified:
    """What verified: a short text for logs and conditions, and the signed digest."""

    digest: str
    description: str


@dataclass
class _Failures:
    reasons: list[str] = field(default_factory=list)

    def add(self, where: str, exc: Exception) -> None:
        self.reasons.append(f"{where}: {exc}")


def simple_signing_payload(
    ref: Reference, digest: str, annotations: Mapping[str, str] | None = None
) -> bytes:
    """The payload cosign signs, byte for byte as its Go JSON encoder writes it."""
    payload = {
        "critical": {
            "identity": {"docker-reference": ref.name},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(sorted(annotations.items())) if annotations else None,
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    # Go escapes these three for HTML safety; the bytes differ without it.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def signature_tag(digest: str) -> str:
    """`sha256-<hex>.sig`, where cosign keeps the signatures of `digest`."""
    return digest.replace(":", "-") + ".sig"


async def resolve(registry: Registry, ref: Reference) -> str:
    """The digest `ref` names: its own, or the one its tag points to now."""
    if ref.digest:
        return ref.digest
    return await registry.resolve(ref)


async def sign_artifact(
    registry: Registry,
    ref: Reference,
    key: PrivateKey,
    annotations: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Sign the manifest `ref` names; returns (signed digest, signature manifest digest).

    The signature is appended to the `.sig` manifest (an identical one is not added twice).
    """
    digest = await resolve(registry, ref)
    payload = simple_signing_payload(ref, digest, annotations)
    signature = base64.b64encode(sign(key, payload)).decode()
    pushed = await append_signature(
        registry, ref, digest, payload, {SIGNATURE_ANNOTATION: signature}
    )
    return digest, pushed


async def append_signature(
    registry: Registry,
    ref: Reference,
    digest: str,
    payload: bytes,
    annotations: Mapping[str, str],
) -> str:
    """Add a layer (payload, and annotations carrying the signature and, keyless, the
    certificate, chain and log proof) to the `.sig` manifest of `digest`; returns the
    manifest's new digest. An identical signature is not added twice."""
    sig_ref = ref.with_tag(signature_tag(digest))
    layers: list[dict[str, Any]] = []
    try:
        existing = await registry.fetch_manifest(sig_ref, (OCI_MANIFEST,))
        layers = list(_json(existing.data, sig_ref).get("layers") or [])
    except oci.NotFound:
        pass
    payload_digest = sha256_digest(payload)
    layer: dict[str, Any] = {
        "mediaType": SIMPLE_SIGNING,
        "size": len(payload),
        "digest": payload_digest,
        "annotations": dict(annotations),
    }
    if not any(_same_signature(old, layer) for old in layers):
        layers.append(layer)
    await registry.push_blob(ref.repository, payload_digest, len(payload), payload)
    config = _config([str(item.get("digest")) for item in layers])
    config_digest = sha256_digest(config)
    await registry.push_blob(ref.repository, config_digest, len(config), config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": _OCI_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers,
        },
        separators=(",", ":"),
    ).encode()
    return await registry.push_manifest(sig_ref, manifest, OCI_MANIFEST)


async def signatures(registry: Registry, ref: Reference, digest: str) -> list[Signature]:
    """The classic signatures of `digest` (the layers of its `.sig` manifest)."""
    sig_ref = ref.with_tag(signature_tag(digest))
    try:
        manifest = await registry.fetch_manifest(sig_ref, (OCI_MANIFEST, oci.DOCKER_MANIFEST))
    except oci.NotFound:
        return []
    layers = _json(manifest.data, sig_ref).get("layers")
    if not isinstance(layers, list):
        raise VerificationError(f"signature manifest '{sig_ref}' has no layers list")
    found: list[Signature] = []
    for index, layer in enumerate(layers[:MAX_SIGNATURES], start=1):
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        annotations = layer.get("annotations") or {}
        try:
            found.append(await _read_signature(registry, ref, index, layer, annotations))
        except VerificationError as exc:
            found.append(Signature(index, b"", b"", error=str(exc)))
    return found


async def bundles(registry: Registry, ref: Reference, digest: str) -> list[tuple[str, bytes]]:
    """Sigstore bundles that refer to `digest`: (manifest digest, bundle JSON) pairs.

    On registries without the referrers API cosign's tag index lists its bundles with the
    empty artifactType, so the manifests themselves say which referrers are bundles.
    """
    from ._bundle import MAX_BUNDLE_SIZE, REFERRER_ARTIFACT_TYPES, bundle_layer

    found: list[tuple[str, bytes]] = []
    referrers = await registry.referrers(ref.repository, digest)
    for descriptor in referrers[:MAX_SIGNATURES]:
        if descriptor.get("artifactType") not in REFERRER_ARTIFACT_TYPES:
            continue
        where = ref.with_digest(str(descriptor.get("digest")))
        manifest = await registry.fetch_manifest(where, (OCI_MANIFEST,))
        layer = bundle_layer(_json(manifest.data, where))
        if layer is None:
            continue
        size = layer.get("size")
        if not isinstance(size, int) or size > MAX_BUNDLE_SIZE:
            raise VerificationError(
                f"bundle in '{where}' has size {size!r}, not below {MAX_BUNDLE_SIZE} bytes"
            )
        out = io.BytesIO()
        try:
            await registry.fetch_blob(
                ref.repository, str(layer.get("digest")), out, max_size=MAX_BUNDLE_SIZE
            )
        except oci.DigestMismatch as exc:
            raise VerificationError(f"bundle in '{where}': {exc}") from None
        found.append((manifest.digest, out.getvalue()))
    return found


async def verify_artifact(registry: Registry, ref: Reference, policy: CosignPolicy) -> Verified:
    """Verify the cosign signatures of the manifest `ref` names against `policy`.

    Registry failures raise `oci.OCIError`; everything about the signatures themselves
    raises `VerificationError`.
    """
    digest = await resolve(registry, ref)
    target = f"{ref.name}@{digest}"
    failures = _Failures()
    classic = await signatures(registry, ref, digest)
    root = _trusted_root(policy) if policy.identities else None
    for item in classic:
        try:
            if item.error:
                raise VerificationError(item.error)
            if policy.keys:
                return _verify_keyed(item, digest, policy.keys)
            assert root is not None
            return _verify_keyless(item, digest, policy.identities, root)
        except VerificationError as exc:
            failures.add(f"signature {item.index} in {signature_tag(digest)}", exc)
    found_bundles = await bundles(registry, ref, digest)
    for where, bundle in found_bundles:
        try:
            if policy.keys:
                from ._bundle import verify_bundle_with_keys

                verify_bundle_with_keys(bundle, digest, list(policy.keys))
                return Verified(digest, f"sigstore bundle {where[:19]} verified with a key")
            # sigstore-python is slow to load and works synchronously: off the event loop.
            await asyncio.to_thread(_verify_keyless_bundle, bundle, digest, policy)
            return Verified(digest, f"sigstore bundle {where[:19]} verified keyless")
        except VerificationError as exc:
            failures.add(f"sigstore bundle {where[:19]}", exc)
    if not classic and not found_bundles:
        raise VerificationError(f"no cosign signature found for '{target}'")
    raise VerificationError(
        f"no valid cosign signature for '{target}': " + "; ".join(failures.reasons)
    )


def _verify_keyed(item: Signature, digest: str, keys: Sequence[PublicKey]) -> Verified:
    key = verify_with_any(keys, item.signature, item.payload)
    _check_payload(item.payload, digest)
    return Verified(digest, f"signed with key {key_id(key)}")


def _verify_keyless(
    item: Signature, digest: str, identities: Sequence[Identity], root: Any
) -> Verified:
    from . import _keyless

    if item.certificate is None:
        raise VerificationError(
            f"no certificate in the {CERTIFICATE_ANNOTATION} annotation "
            "(keyless verification needs one; use public keys for keyed signatures)"
        )
    if item.bundle is None:
        raise VerificationError(
            f"no transparency log proof (the {BUNDLE_ANNOTATION} annotation is missing)"
        )
    signed_at: datetime = _keyless.verify_rekor_bundle(
        item.bundle,
        root,
        payload=item.payload,
        signature=item.signature,
        certificate_pem=item.certificate,
    )
    certificate: x509.Certificate = _keyless.verify_certificate(
        item.certificate, item.chain, root, identities, signed_at
    )
    public = certificate.public_key()
    verify_with_any([public], item.signature, item.payload)  # type: ignore[list-item]
    _check_payload(item.payload, digest)
    subject = _keyless.certificate_identity(certificate)
    return Verified(digest, f"signed keyless by '{subject[1]}' (issuer '{subject[0]}')")


def _verify_keyless_bundle(bundle: bytes, digest: str, policy: CosignPolicy) -> None:
    from ._bundle_keyless import verify_bundle_keyless

    verify_bundle_keyless(bundle, digest, policy.trusted_root, list(policy.identities))


def _check_payload(payload: bytes, digest: str) -> None:
    try:
        data = json.loads(payload)
        critical = data["critical"]
        kind = critical["type"]
        signed = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"payload is not a cosign simple signing payload: {exc}") from None
    if kind != SIGNATURE_TYPE:
        raise VerificationError(f"payload is of unknown type {kind!r}")
    if signed != digest:
        raise VerificationError(
            f"payload signs {signed}, not this artifact ({digest}): "
            "the signature belongs to another artifact"
        )


def _trusted_root(policy: CosignPolicy) -> Any:
    from . import _trustroot

    if policy.trusted_root is None:
        return _trustroot.TrustedRoot.default()
    return _trustroot.TrustedRoot.from_json(policy.trusted_root)


async def _read_signature(
    registry: Registry,
    ref: Reference,
    index: int,
    layer: Mapping[str, Any],
    annotations: Mapping[str, Any],
) -> Signature:
    where = "payload blob"
    size = layer.get("size")
    if not isinstance(size, int) or size > MAX_PAYLOAD:
        raise VerificationError(f"{where}: payload size {size!r} is not below {MAX_PAYLOAD}")
    out = io.BytesIO()
    try:
        await registry.fetch_blob(ref.repository, str(layer.get("digest")), out,
                                  max_size=MAX_PAYLOAD)  # fmt: skip
    except oci.DigestMismatch as exc:
        raise VerificationError(f"{where}: {exc}") from None
    try:
        signature = base64.b64decode(str(annotations.get(SIGNATURE_ANNOTATION, "")),
                                     validate=True)  # fmt: skip
    except (ValueError, binascii.Error):
        raise VerificationError("the signature annotation is not base64") from None
    bundle: Mapping[str, Any] | None = None
    raw_bundle = annotations.get(BUNDLE_ANNOTATION)
    if raw_bundle:
        try:
            parsed = json.loads(str(raw_bundle))
        except ValueError:
            raise VerificationError("the bundle annotation is not JSON") from None
        if not isinstance(parsed, dict):
            raise VerificationError("the bundle annotation is not a JSON object")
        bundle = parsed
    certificate = annotations.get(CERTIFICATE_ANNOTATION)
    chain = annotations.get(CHAIN_ANNOTATION)
    return Signature(
        index=index,
        payload=out.getvalue(),
        signature=signature,
        certificate=str(certificate).encode() if certificate else None,
        chain=str(chain).encode() if chain else None,
        bundle=bundle,
    )


def _same_signature(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("digest") == b.get("digest") and (a.get("annotations") or {}).get(
        SIGNATURE_ANNOTATION
    ) == (b.get("annotations") or {}).get(SIGNATURE_ANNOTATION)


def _config(diff_ids: list[str]) -> bytes:
    """The image config cosign gives a signature manifest: layers as rootfs, nothing else."""
    return json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"} for _ in diff_ids],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        },
        separators=(",", ":"),
    ).encode()


def _json(data: bytes, ref: Reference) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise VerificationError(f"manifest '{ref}' is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise VerificationError(f"manifest '{ref}' is not a JSON object")
    return parsed
