"""A local Sigstore for tests: a Fulcio-like CA, a Rekor-like log key and a trusted root.

Keyless signatures need a certificate from Fulcio (an OIDC identity in the SAN, the OIDC
issuer in an extension, ten minutes of validity) and a signed entry timestamp from Rekor.
`TestCA` and `TestLog` make both offline, and `trusted_root_json` writes the sigstore
`trusted_root.json` that trusts them, so tests can verify keyless signatures without network::

    ca, log = TestCA(), TestLog()
    leaf = ca.issue("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main",
                    "https://token.actions.githubusercontent.com")
    signature = leaf.sign(payload)
    bundle = log.bundle_annotation(payload, signature, leaf.cert_pem)
    root = trusted_root_json(ca, log)
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidegate.oci import Reference, Registry
from tidegate.sign._cosign import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    SIGNATURE_ANNOTATION,
    append_signature,
    simple_signing_payload,
)

__all__ = [
    "FULCIO_ISSUER_V1",
    "FULCIO_ISSUER_V2",
    "FULCIO_OTHERNAME_SAN",
    "SigningCertificate",
    "TestCA",
    "TestLog",
    "der_utf8_string",
    "trusted_root_json",
]

# Fulcio's certificate extensions (sigstore/fulcio docs/oid-info.md).
FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw string, deprecated
FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
FULCIO_OTHERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

# Fulcio issues certificates for ten minutes.
LEAF_LIFETIME = timedelta(minutes=10)

SanKind = Literal["uri", "email", "othername"]
IssuerExtension = Literal["v1", "v2", "both", "none"]
Window = tuple[datetime, datetime | None]


def der_utf8_string(text: str) -> bytes:
    """`text` as a DER UTF8String (how Fulcio encodes its v2 extensions)."""
    raw = text.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SigningCertificate:
    """A Fulcio-style leaf certificate with its key and the chain above it."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def cert_pem(self) -> bytes:
        """The leaf, as in cosign's `dev.sigstore.cosign/certificate` annotation."""
        return _pem(self.certificate)

    @property
    def chain_pem(self) -> bytes:
        """Intermediate then root, as in cosign's `dev.sigstore.cosign/chain` annotation."""
        return b"".join(_pem(c) for c in self.chain)

    def sign(self, payload: bytes) -> bytes:
        """An ECDSA-SHA256 (ASN.1 DER) signature over `payload`, as cosign makes."""
        return self.private_key.sign(payload, ec.ECDSA(hashes.SHA256()))


class TestCA:
    """A Fulcio-like CA: a self-signed root and an intermediate, both ECDSA P-256.

    `not_before`/`not_after` bound the CA certificates (default: a year either side of now).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        name: str = "tidegate test fulcio",
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> None:
        now = datetime.now(UTC)
        self.not_before = not_before or now - timedelta(days=365)
        self.not_after = not_after or now + timedelta(days=365)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tidegate.test"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        intermediate_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tidegate.test"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} intermediate"),
            ]
        )
        self.root = self._ca_cert(root_name, self.root_key, root_name, self.root_key, 1)
        self.intermediate = self._ca_cert(
            intermediate_name, self.intermediate_key, root_name, self.root_key, 0
        )

    def _ca_cert(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        issuer_key: ec.EllipticCurvePrivateKey,
        path_length: int,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
            .sign(issuer_key, hashes.SHA256())
        )

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediate then root: the order of a trusted root's `certChain`."""
        return (self.intermediate, self.root)

    def issue(
        self,
        subject_san: str,
        issuer: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        *,
        san_kind: SanKind = "uri",
        eku: bool = True,
        issuer_extension: IssuerExtension = "v2",
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> SigningCertificate:
        """A leaf for the OIDC identity `subject_san` signed in at `issuer`, as Fulcio issues.

        Valid from `not_before` (default: a minute ago) for ten minutes unless `not_after` is
        given. `san_kind` picks the SAN type (URI for workflows, email for people, Fulcio's
        otherName for usernames); `eku=False` leaves out codeSigning; `issuer_extension`
        chooses which Fulcio issuer extensions carry `issuer`.
        """
        key = key or ec.generate_private_key(ec.SECP256R1())
        start = not_before or datetime.now(UTC) - timedelta(minutes=1)
        end = not_after or start + LEAF_LIFETIME
        san: x509.GeneralName
        if san_kind == "uri":
            san = x509.UniformResourceIdentifier(subject_san)
        elif san_kind == "email":
            san = x509.RFC822Name(subject_san)
        else:
            san = x509.OtherName(FULCIO_OTHERNAME_SAN, der_utf8_string(subject_san))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                False,
            )
            # Fulcio leaves have an empty subject, so the SAN is critical (RFC 5280 4.2.1.6).
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        )
        if eku:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
        if issuer_extension in ("v1", "both"):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(FULCIO_ISSUER_V1, issuer.encode()), critical=False
            )
        if issuer_extension in ("v2", "both"):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(FULCIO_ISSUER_V2, der_utf8_string(issuer)),
                critical=False,
            )
        certificate = builder.sign(self.intermediate_key, hashes.SHA256())
        return SigningCertificate(certificate, key, self.chain)

    def authority_json(self, valid_for: Window | None = None) -> dict[str, Any]:
        """This CA as an entry of a trusted root's `certificateAuthorities`."""
        start, end = valid_for or (self.not_before, None)
        period: dict[str, str] = {"start": _rfc3339(start)}
        if end is not None:
            period["end"] = _rfc3339(end)
        return {
            "subject": {"organization": "tidegate.test", "commonName": "tidegate test fulcio"},
            "uri": "https://fulcio.tidegate.test",
            "certChain": {
                "certificates": [
                    {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))}
                    for c in self.chain
                ]
            },
            "validFor": period,
        }


class TestLog:
    """A Rekor-like transparency log: an ECDSA P-256 key that signs entry timestamps."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, valid_from: datetime | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public_key_der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.valid_from = valid_from or datetime.now(UTC) - timedelta(days=365)

    @property
    def log_id(self) -> str:
        """The log id entries name this log by: hex SHA-256 of the DER public key."""
        return hashlib.sha256(self.public_key_der).hexdigest()

    def entry_body(
        self,
        payload: bytes,
        signature: bytes,
        verifier_pem: bytes,
        *,
        kind: Literal["hashedrekord", "rekord"] = "hashedrekord",
    ) -> bytes:
        """The canonical JSON body Rekor stores for a signature by `verifier_pem` (cert or key)."""
        digest = hashlib.sha256(payload).hexdigest()
        public_key = {"content": _b64(verifier_pem)}
        if kind == "hashedrekord":
            spec: dict[str, Any] = {
                "data": {"hash": {"algorithm": "sha256", "value": digest}},
                "signature": {"content": _b64(signature), "publicKey": public_key},
            }
        else:
            spec = {
                "data": {"hash": {"algorithm": "sha256", "value": digest}},
                "signature": {
                    "content": _b64(signature),
                    "format": "x509",
                    "publicKey": public_key,
                },
            }
        return rfc8785.dumps({"apiVersion": "0.0.1", "kind": kind, "spec": spec})

    def sign_entry(self, body: str, integrated_time: int, log_index: int, log_id: str) -> bytes:
        """The signed entry timestamp (SET) over a bundle payload, as Rekor signs it."""
        canonical = rfc8785.dumps(
            {
                "body": body,
                "integratedTime": integrated_time,
                "logIndex": log_index,
                "logID": log_id,
            }
        )
        return self.key.sign(canonical, ec.ECDSA(hashes.SHA256()))

    def bundle_annotation(
        self,
        payload: bytes,
        signature: bytes,
        cert_pem: bytes,
        integrated_time: datetime | int | None = None,
        log_index: int = 1,
        *,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        """The `dev.sigstore.cosign/bundle` annotation (parsed) for an entry of this log.

        `integrated_time` defaults to now; `body` replaces the entry body (to make it lie).
        """
        if integrated_time is None:
            integrated_time = datetime.now(UTC)
        seconds = (
            int(integrated_time.timestamp())
            if isinstance(integrated_time, datetime)
            else integrated_time
        )
        encoded = _b64(body if body is not None else self.entry_body(payload, signature, cert_pem))
        return {
            "SignedEntryTimestamp": _b64(self.sign_entry(encoded, seconds, log_index, self.log_id)),
            "Payload": {
                "body": encoded,
                "integratedTime": seconds,
                "logIndex": log_index,
                "logID": self.log_id,
            },
        }

    def tlog_json(self, valid_for: Window | None = None) -> dict[str, Any]:
        """This log as an entry of a trusted root's `tlogs`."""
        start, end = valid_for or (self.valid_from, None)
        period: dict[str, str] = {"start": _rfc3339(start)}
        if end is not None:
            period["end"] = _rfc3339(end)
        return {
            "baseUrl": "https://rekor.tidegate.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(self.public_key_der),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": period,
            },
            "logId": {"keyId": _b64(bytes.fromhex(self.log_id))},
        }


def trusted_root_json(
    cas: TestCA | Sequence[TestCA],
    logs: TestLog | Sequence[TestLog],
    *,
    ca_valid_for: Window | None = None,
    log_valid_for: Window | None = None,
) -> bytes:
    """A sigstore `trusted_root.json` trusting `cas` and `logs`.

    The validity windows default to each CA's certificates and each log's `valid_from`;
    pass (start, end) — end None for open-ended — to narrow them.
    """
    ca_list = [cas] if isinstance(cas, TestCA) else list(cas)
    log_list = [logs] if isinstance(logs, TestLog) else list(logs)
    doc: dict[str, Any] = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [log.tlog_json(log_valid_for) for log in log_list],
        "certificateAuthorities": [ca.authority_json(ca_valid_for) for ca in ca_list],
        "ctlogs": [],
        "timestampAuthorities": [],
    }
    return rfc8785.dumps(doc)


async def push_keyless_signature(
    registry: Registry,
    ref: Reference,
    digest: str,
    certificate: SigningCertificate,
    log: TestLog,
    integrated_time: datetime | int | None = None,
) -> bytes:
    """Sign `digest` as `cosign sign` does keyless (classic format): the simple signing
    payload signed with the certificate's key, appended to the `.sig` manifest with the
    certificate, chain and log proof annotations. Returns the payload."""
    payload = simple_signing_payload(ref, digest)
    signature = certificate.sign(payload)
    bundle = log.bundle_annotation(payload, signature, certificate.cert_pem, integrated_time)
    await append_signature(registry, ref, digest, payload, {
        SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
        CERTIFICATE_ANNOTATION: certificate.cert_pem.decode(),
        CHAIN_ANNOTATION: certificate.chain_pem.decode(),
        BUNDLE_ANNOTATION: json.dumps(bundle, separators=(",", ":")),
    })  # fmt: skip
    return payload
