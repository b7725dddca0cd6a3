"""Sigstore bundles as cosign v3 writes them for a container image, made offline for tests.

`SigstoreInstance` is a private stand-in for Sigstore's public good services: a Fulcio-like CA
that issues short-lived leaf certificates with the OIDC issuer extension and an embedded SCT,
a CT log key, and a Rekor-like log key that signs inclusion promises (SETs) and checkpoints.
Its `trusted_root_json()` names all three, in the `trusted_root.json` format cosign and
sigstore-python read.

`keyless_bundle` and `keyed_bundle` make v0.3 bundles holding a DSSE envelope around the
in-toto statement `cosign sign` signs; `push_bundle_referrer` attaches one to an image the way
cosign does (an OCI 1.1 referrer, with the `sha256-<hex>` tag index on registries without the
referrers API).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tidegate.oci import OCI_INDEX, OCI_MANIFEST, NotFound, Reference, Registry, sha256_digest
from tidegate.sign._bundle import (
    BUNDLE_ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    IN_TOTO_STATEMENT_V1,
    pae,
)

DEFAULT_SUBJECT = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"

# Fulcio's certificate extensions: the OIDC issuer, raw (v1) and as a DER UTF8String (v2).
_OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
# RFC 6962: the SCT list embedded in a (pre)certificate.
_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_EMPTY_CONFIG = b"{}"
_EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"

SignFn = Callable[[bytes], bytes]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key ID: the SHA-256 of the key's SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki(key)).digest()


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _ecdsa(key: ec.EllipticCurvePrivateKey) -> SignFn:
    return lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))


def _signer(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
) -> SignFn:
    """Sign as cosign does with a key: ECDSA P-256/SHA-256, RSA PKCS #1 v1.5 SHA-256, Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _ecdsa(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign


def _seconds(at: datetime.datetime | None) -> datetime.datetime:
    at = at or datetime.datetime.now(datetime.UTC)
    return at.replace(microsecond=0)


def _rfc3339(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement(
    digest: str,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """The in-toto statement `cosign sign` signs for the image `digest` (`sha256:<hex>`)."""
    algorithm, _, value = digest.partition(":")
    # cosign v3.0.6 writes `"annotations":{}` even without `-a` flags.
    subject = {"digest": {algorithm: value}, "annotations": dict(annotations or {})}
    body = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [subject],
        "predicateType": predicate_type,
        "predicate": {},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def dsse_envelope(payload: bytes, sign: SignFn, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> Any:
    """A DSSE envelope (bundle JSON form) with one signature over the PAE of `payload`."""
    signature = sign(pae(payload_type, payload))
    return {
        "payload": _b64(payload),
        "payloadType": payload_type,
        "signatures": [{"sig": _b64(signature)}],
    }


@dataclass
class TransparencyLog:
    """A Rekor-like log of one entry per bundle: it signs SETs and checkpoints."""

    key: ec.EllipticCurvePrivateKey
    origin: str = "rekor.tidegate.test - 1"

    @classmethod
    def create(cls) -> TransparencyLog:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def log_id(self) -> bytes:
        return _key_id(self.key.public_key())

    def entry(self, body: bytes, integrated_time: int, log_index: int = 0) -> dict[str, Any]:
        """A v1 transparency log entry for `body` with an inclusion promise and a proof.

        The proof is for a tree of one leaf, so the root is the leaf hash and no sibling
        hashes are needed; the checkpoint names that root, signed as a signed note.
        """
        sign = _ecdsa(self.key)
        promise = json.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated_time,
                "logID": self.log_id.hex(),
                "logIndex": log_index,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        root = hashlib.sha256(b"\x00" + body).digest()
        note = f"{self.origin}\n1\n{_b64(root)}\n"
        # The note signature is prefixed with the first four bytes of the log's key ID.
        note_signature = _b64(self.log_id[:4] + sign(note.encode()))
        checkpoint = f"{note}\n\u2014 {self.origin.split()[0]} {note_signature}\n"
        return {
            "logIndex": str(log_index),
            "logId": {"keyId": _b64(self.log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": _b64(sign(promise))},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": _b64(root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }


@dataclass
class SigstoreInstance:
    """A private Fulcio-like CA, CT log and Rekor-like log, and the trusted root naming them."""

    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    ct_key: ec.EllipticCurvePrivateKey
    log: TransparencyLog

    @classmethod
    def create(cls, name: str = "tidegate test sigstore") -> SigstoreInstance:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tidegate"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_key, ca_cert, ec.generate_private_key(ec.SECP256R1()), TransparencyLog.create()
        )

    # -- trusted root ----------------------------------------------------------------------

    def trusted_root(self) -> dict[str, Any]:
        start = _rfc3339(self.ca_cert.not_valid_before_utc)

        def log(url: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(_key_id(key))},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log("https://rekor.tidegate.test", self.log.key.public_key())],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "tidegate", "commonName": "tidegate test"},
                    "uri": "https://fulcio.tidegate.test",
                    "certChain": {
                        "certificates": [
                            {
                                "rawBytes": _b64(
                                    self.ca_cert.public_bytes(serialization.Encoding.DER)
                                )
                            }
                        ]
                    },
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log("https://ctfe.tidegate.test", self.ct_key.public_key())],
            "timestampAuthorities": [],
        }

    def trusted_root_json(self) -> bytes:
        """This instance as a sigstore `trusted_root.json`."""
        return json.dumps(self.trusted_root(), indent=2).encode()

    # -- certificates ----------------------------------------------------------------------

    def leaf(
        self,
        subject: str = DEFAULT_SUBJECT,
        issuer: str = DEFAULT_ISSUER,
        *,
        signed_at: datetime.datetime | None = None,
        lifetime: datetime.timedelta = datetime.timedelta(minutes=10),
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A Fulcio-style leaf valid from `signed_at` for `lifetime`, with an embedded SCT.

        `subject` becomes a URI SAN when it has a scheme, an email SAN otherwise.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        at = _seconds(signed_at)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(subject)
            if "://" in subject
            else x509.RFC822Name(subject)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - datetime.timedelta(seconds=30))
            .not_valid_after(at - datetime.timedelta(seconds=30) + lifetime)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                False,
            )
            # Fulcio's SAN is critical: the subject DN is empty.
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(_OIDC_ISSUER_V1, issuer.encode()), False)
            .add_extension(
                x509.UnrecognizedExtension(_OIDC_ISSUER_V2, _der(0x0C, issuer.encode())), False
            )
        )
        # The SCT signs the TBSCertificate without the SCT extension (a "precertificate"):
        # build that first, then the final certificate with the SCT list appended last.
        precert = builder.sign(self.ca_key, hashes.SHA256())
        sct = self._sct(precert.tbs_certificate_bytes, at)
        cert = builder.add_extension(
            x509.UnrecognizedExtension(_SCT_LIST, _der(0x04, sct)), False
        ).sign(self.ca_key, hashes.SHA256())
        return key, cert

    def _sct(self, tbs: bytes, at: datetime.datetime) -> bytes:
        """A TLS-encoded SignedCertificateTimestampList with one precert SCT (RFC 6962)."""
        timestamp = int(at.timestamp()) * 1000
        issuer_key_id = _key_id(self.ca_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp, 1)
            + issuer_key_id
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            struct.pack("!B", 0)
            + _key_id(self.ct_key.public_key())
            + struct.pack("!QH", timestamp, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )
        entry = struct.pack("!H", len(sct)) + sct
        return struct.pack("!H", len(entry)) + entry

    # -- bundles ---------------------------------------------------------------------------

    def keyless_bundle(
        self,
        digest: str,
        *,
        subject: str = DEFAULT_SUBJECT,
        issuer: str = DEFAULT_ISSUER,
        predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
        signed_at: datetime.datetime | None = None,
        log: TransparencyLog | None = None,
        payload: bytes | None = None,
        integrated_at: datetime.datetime | None = None,
    ) -> bytes:
        """A v0.3 bundle as keyless `cosign sign` writes it for the image `digest`.

        `log` replaces this instance's log (a log the trusted root does not name); `payload`
        replaces the in-toto statement; `integrated_at` is the log's time for the entry when
        it should not be the signing time (outside the leaf's validity, say).
        """
        at = _seconds(signed_at)
        key, cert = self.leaf(subject, issuer, signed_at=at)
        body = payload if payload is not None else statement(digest, predicate_type)
        envelope = dsse_envelope(body, _ecdsa(key))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        # Rekor's dsse v0.0.1 entry: hashes of the envelope and payload, and each signature
        # with its verifier (the PEM certificate, base64-encoded once more).
        entry_body = json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(body).hexdigest(),
                    },
                    "signatures": [
                        {"signature": s["sig"], "verifier": _b64(pem)}
                        for s in envelope["signatures"]
                    ],
                },
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        logged = _seconds(integrated_at) if integrated_at else at
        tlog_entry = (log or self.log).entry(entry_body, int(logged.timestamp()))
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [tlog_entry],
                "timestampVerificationData": {},
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle).encode()


def keyed_bundle(
    digest: str,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    payload: bytes | None = None,
) -> bytes:
    """A v0.3 bundle as `cosign sign --key … --tlog-upload=false` writes it for `digest`.

    The verification material is only a hint naming the key (no certificate, no log entry).
    """
    sign = _signer(key)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = payload if payload is not None else statement(digest, predicate_type)
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        # As cosign v3.0.6 writes it with --tlog-upload=false: a key hint and nothing else.
        "verificationMaterial": {"publicKey": {"hint": _b64(hashlib.sha256(public).digest())}},
        "dsseEnvelope": dsse_envelope(body, sign),
    }
    return json.dumps(bundle).encode()


# -- registry ------------------------------------------------------------------------------


def referrer_manifest(
    bundle_json: bytes,
    subject: Mapping[str, Any],
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    created: str = "2026-01-01T00:00:00Z",
) -> bytes:
    """The OCI 1.1 manifest cosign v3 writes to attach `bundle_json` to `subject`.

    As cosign's `WriteAttestationNewBundleFormat`: artifactType is the bundle media type, the
    config is the empty descriptor's media type over `{}`, one layer is the bundle, and
    annotations say what the bundle holds.
    """
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_ARTIFACT_TYPE,
        # cosign repeats the artifactType on the config descriptor.
        "config": {
            "mediaType": _EMPTY_MEDIA_TYPE,
            "artifactType": BUNDLE_ARTIFACT_TYPE,
            "digest": sha256_digest(_EMPTY_CONFIG),
            "size": len(_EMPTY_CONFIG),
        },
        "layers": [
            {
                "mediaType": BUNDLE_MEDIA_TYPE,
                "digest": sha256_digest(bundle_json),
                "size": len(bundle_json),
            }
        ],
        "subject": dict(subject),
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
            "org.opencontainers.image.created": created,
        },
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


async def push_bundle_referrer(
    registry: Registry,
    repository: str,
    digest: str,
    bundle_json: bytes,
    *,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
) -> str:
    """Attach `bundle_json` to the manifest `digest` as cosign does; returns the referrer digest.

    On a registry without the referrers API the `sha256-<hex>` tag index is updated too, as
    go-containerregistry does for cosign: its entry's artifactType is the config media type
    (the empty type), not the bundle type, and it carries no annotations.
    """
    target = Reference(registry.host, repository, digest=digest)
    signed = await registry.fetch_manifest(target)
    subject = {"mediaType": signed.media_type, "digest": digest, "size": len(signed.data)}
    manifest = referrer_manifest(bundle_json, subject, predicate_type=predicate_type)
    for blob in (_EMPTY_CONFIG, bundle_json):
        await registry.push_blob(repository, sha256_digest(blob), len(blob), blob)
    referrer = await registry.push_manifest(
        Reference(registry.host, repository), manifest, OCI_MANIFEST
    )
    listed = await registry.referrers(repository, digest)
    if not any(m.get("digest") == referrer for m in listed):
        await _add_to_tag_index(registry, repository, digest, referrer, manifest)
    return referrer


async def _add_to_tag_index(
    registry: Registry, repository: str, digest: str, referrer: str, manifest: bytes
) -> None:
    tag = Reference(registry.host, repository, tag=digest.replace(":", "-"))
    try:
        index = json.loads((await registry.fetch_manifest(tag, (OCI_INDEX,))).data)
    except NotFound:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    index["manifests"].append(
        {
            "mediaType": OCI_MANIFEST,
            "size": len(manifest),
            "digest": referrer,
            "artifactType": json.loads(manifest)["config"]["mediaType"],
        }
    )
    await registry.push_manifest(tag, json.dumps(index).encode(), OCI_INDEX)
