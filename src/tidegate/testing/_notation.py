"""Notary Project signatures for tests: a CA, code-signing certificates, JWS and COSE envelopes.

Envelopes are laid out as notation-go (notation-core-go's jws and cose packages) writes them,
and `push_notation_signature` stores them as `notation sign` does: an OCI image manifest with
artifactType `application/vnd.cncf.notary.signature`, the empty config, one layer holding the
envelope, the signed artifact as subject, and the certificate thumbprint annotation.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidegate.oci import OCI_INDEX, OCI_MANIFEST, NotFound, Reference, Registry, sha256_digest
from tidegate.sign._notation import (
    COSE_MEDIA_TYPE,
    H_AUTHENTIC_TIME,
    H_EXPIRY,
    H_SCHEME,
    H_SIGNING_TIME,
    JWS_MEDIA_TYPE,
    NOTATION_ARTIFACT_TYPE,
    PAYLOAD_MEDIA_TYPE,
    SCHEME_X509,
    THUMBPRINT_ANNOTATION,
    thumbprints,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
SIGNING_AGENT = "notation-go/1.3.0"
_COSE_ALG = {"ES256": -7, "ES384": -35, "ES512": -36, "PS256": -37, "PS384": -38, "PS512": -39}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _name(subject: Mapping[str, str] | str) -> x509.Name:
    if isinstance(subject, str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject.items()])


def _key(kind: str) -> PrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    curves = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1(), "ec521": ec.SECP521R1()}
    return ec.generate_private_key(curves[kind])


def make_ca(
    subject: Mapping[str, str] | str = "tidegate notation test CA",
    *,
    key: str = "ec256",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed root CA for a trust store."""
    private = _key(key)
    name = _name(subject)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(private, hashes.SHA256())
    )
    return cert, private


DEFAULT_SUBJECT = {"C": "US", "ST": "WA", "L": "Seattle", "O": "tidegate.test", "CN": "signer"}


def make_signing_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    subject: Mapping[str, str] | str = DEFAULT_SUBJECT,
    *,
    key: str = "ec256",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A leaf certificate with the key usages notation requires: digitalSignature, codeSigning."""
    private = _key(key)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, private


def descriptor(media_type: str, digest: str, size: int) -> dict[str, Any]:
    """An OCI descriptor, the `targetArtifact` of a notation payload."""
    return {"mediaType": media_type, "digest": digest, "size": size}


def _alg(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    return {2048: "PS256", 3072: "PS384", 4096: "PS512"}[key.key_size]


def _sign(key: PrivateKey, data: bytes) -> bytes:
    """Raw JWS/COSE signature bytes: r||s for ECDSA, RSASSA-PSS with salt = hash length."""
    alg = _alg(key)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(target: Mapping[str, Any]) -> bytes:
    return json.dumps({"targetArtifact": dict(target)}, separators=(",", ":")).encode()


def _time_header(scheme: str) -> str:
    return H_SIGNING_TIME if scheme == SCHEME_X509 else H_AUTHENTIC_TIME


def _time_critical(scheme: str, expiry: datetime.datetime | None) -> list[str]:
    """The critical headers notation-core-go lists besides the signing scheme."""
    return [
        *([H_AUTHENTIC_TIME] if scheme != SCHEME_X509 else []),
        *([H_EXPIRY] if expiry else []),
    ]


def sign_jws(
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    target: Mapping[str, Any],
    *,
    signing_time: datetime.datetime | None = None,
    expiry: datetime.datetime | None = None,
    extra_protected: Mapping[str, Any] | None = None,
    extra_critical: Sequence[str] = (),
    payload_bytes: bytes | None = None,
    scheme: str = SCHEME_X509,
) -> bytes:
    """A flattened JWS JSON envelope as notation-core-go's jws package writes it."""
    protected: dict[str, Any] = {
        "alg": _alg(key),
        "cty": PAYLOAD_MEDIA_TYPE,
        "crit": [H_SCHEME, *_time_critical(scheme, expiry), *extra_critical],
        H_SCHEME: scheme,
        _time_header(scheme): _rfc3339(signing_time or _now()),
    }
    if expiry:
        protected[H_EXPIRY] = _rfc3339(expiry)
    protected.update(extra_protected or {})
    protected_b64 = _b64url(json.dumps(protected, separators=(",", ":")).encode())
    payload_b64 = _b64url(payload_bytes if payload_bytes is not None else payload(target))
    signature = _sign(key, f"{protected_b64}.{payload_b64}".encode())
    envelope = {
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {
            "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain],
            "io.cncf.notary.signingAgent": SIGNING_AGENT,
        },
        "signature": _b64url(signature),
    }
    return json.dumps(envelope).encode()


def sign_cose(
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    target: Mapping[str, Any],
    *,
    signing_time: datetime.datetime | None = None,
    expiry: datetime.datetime | None = None,
    extra_protected: Mapping[Any, Any] | None = None,
    extra_critical: Sequence[Any] = (),
    payload_bytes: bytes | None = None,
    scheme: str = SCHEME_X509,
) -> bytes:
    """A COSE_Sign1_Tagged envelope as notation-core-go's cose package writes it."""
    protected: dict[Any, Any] = {
        1: _COSE_ALG[_alg(key)],
        2: [H_SCHEME, *_time_critical(scheme, expiry), *extra_critical],
        3: PAYLOAD_MEDIA_TYPE,
        H_SCHEME: scheme,
        _time_header(scheme): cbor2.CBORTag(1, int((signing_time or _now()).timestamp())),
    }
    if expiry:
        protected[H_EXPIRY] = cbor2.CBORTag(1, int(expiry.timestamp()))
    protected.update(extra_protected or {})
    protected_raw = cbor2.dumps(protected)
    body = payload_bytes if payload_bytes is not None else payload(target)
    signature = _sign(key, cbor2.dumps(["Signature1", protected_raw, b"", body]))
    unprotected = {
        33: [c.public_bytes(Encoding.DER) for c in chain],
        "io.cncf.notary.signingAgent": SIGNING_AGENT,
    }
    return cbor2.dumps(cbor2.CBORTag(18, [protected_raw, unprotected, body, signature]))


def signature_manifest(
    subject: Mapping[str, Any],
    envelope: bytes,
    media_type: str,
    chain: Sequence[x509.Certificate],
    created: datetime.datetime | None = None,
) -> bytes:
    """The signature manifest notation-go pushes (OCI image manifest, artifactType notation)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTATION_ARTIFACT_TYPE,
        "config": {
            "mediaType": EMPTY_CONFIG,
            "digest": sha256_digest(b"{}"),
            "size": 2,
            "data": "e30=",
        },
        "layers": [
            {"mediaType": media_type, "digest": sha256_digest(envelope), "size": len(envelope)}
        ],
        "subject": dict(subject),
        "annotations": {
            THUMBPRINT_ANNOTATION: thumbprints(chain),
            "org.opencontainers.image.created": _rfc3339(created or _now()),
        },
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


async def push_notation_signature(
    registry: Registry,
    ref: Reference,
    envelope: bytes,
    media_type: str,
    *,
    chain: Sequence[x509.Certificate] = (),
    subject: Mapping[str, Any] | None = None,
) -> str:
    """Push `envelope` as a signature of `ref` (with digest); returns the manifest digest.

    `subject` defaults to the artifact's own descriptor; pass another to attach a copied
    signature to a different artifact.
    """
    assert ref.digest, "push_notation_signature needs a reference with a digest"
    if subject is None:
        manifest = await registry.fetch_manifest(ref)
        subject = descriptor(manifest.media_type, manifest.digest, len(manifest.data))
    if not chain:
        chain = _chain_of(envelope, media_type)
    await registry.push_blob(ref.repository, sha256_digest(envelope), len(envelope), envelope)
    await registry.push_blob(ref.repository, sha256_digest(b"{}"), 2, b"{}")
    data = signature_manifest(subject, envelope, media_type, chain)
    digest = await registry.push_manifest(ref.with_digest(sha256_digest(data)), data, OCI_MANIFEST)
    await _add_to_referrers_tag(
        registry,
        ref.with_tag(str(subject["digest"]).replace(":", "-")),
        {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(data),
            "artifactType": NOTATION_ARTIFACT_TYPE,
            "annotations": json.loads(data)["annotations"],
        },
    )
    return digest


async def _add_to_referrers_tag(
    registry: Registry, tag: Reference, entry: Mapping[str, Any]
) -> None:
    """Keep the `sha256-<hex>` referrers index, as notation does on registries without the API."""
    try:
        index = json.loads((await registry.fetch_manifest(tag, (OCI_INDEX,))).data)
    except NotFound:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    index["manifests"].append(dict(entry))
    await registry.push_manifest(tag, json.dumps(index).encode(), OCI_INDEX)


def _chain_of(envelope: bytes, media_type: str) -> list[x509.Certificate]:
    try:
        if media_type == JWS_MEDIA_TYPE:
            x5c = json.loads(envelope)["header"]["x5c"]
            return [x509.load_der_x509_certificate(base64.b64decode(c)) for c in x5c]
        if media_type == COSE_MEDIA_TYPE:
            chain = cbor2.loads(envelope).value[1][33]
            return [x509.load_der_x509_certificate(c) for c in chain]
    except Exception:  # a deliberately broken envelope: no thumbprints to write
        return []
    return []
