"""Cosign's classic keyless signatures: the Fulcio certificate and the Rekor entry timestamp.

A keyless `.sig` layer carries, next to the signature, the Fulcio leaf certificate
(`dev.sigstore.cosign/certificate`), its chain (`dev.sigstore.cosign/chain`) and Rekor's
proof of logging (`dev.sigstore.cosign/bundle`). Verification is offline, as in cosign:

1. `verify_rekor_bundle`: the signed entry timestamp (SET) is the signature of a log in the
   trusted root, and the logged entry is this signature, payload and certificate. Its
   integrated time is when the signature was made.
2. `verify_certificate`: the leaf chains to a trusted Fulcio CA, every certificate of the path
   valid at that time (Fulcio leaves live ten minutes, so "now" would be wrong), and its OIDC
   issuer and subject match one of the allowed identities, as Flux's `matchOIDCIdentity`.

The signature over the payload with the leaf's key is the caller's check, shared with keyed
verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as X509VerificationError

from ._errors import VerificationError
from ._identity import Identity
from ._regex import go_search
from ._trustroot import LogPublicKey, TransparencyLog, TrustedRoot

__all__ = [
    "certificate_identity",
    "match_identity",
    "oidc_issuer",
    "subject_alternative_names",
    "verify_certificate",
    "verify_rekor_bundle",
]

# Fulcio's certificate extensions (sigstore/fulcio docs/oid-info.md).
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw string, deprecated
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
_OTHERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

_ENTRY = "transparency log entry"
_HASHES: Mapping[str, Any] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


@dataclass(frozen=True)
class _RekorBundle:
    """The `dev.sigstore.cosign/bundle` annotation: an entry and Rekor's SET over it."""

    signed_entry_timestamp: bytes
    body: str
    integrated_time: int
    log_index: int
    log_id: str

    @classmethod
    def parse(cls, bundle: Mapping[str, Any]) -> _RekorBundle:
        try:
            set_b64 = bundle["SignedEntryTimestamp"]
            payload = bundle["Payload"]
            body = payload["body"]
            integrated_time = payload["integratedTime"]
            log_index = payload["logIndex"]
            log_id = payload["logID"]
        except (KeyError, TypeError) as exc:
            raise VerificationError(f"{_ENTRY}: malformed bundle: missing {exc}") from None
        if not (
            isinstance(set_b64, str)
            and isinstance(body, str)
            and isinstance(log_id, str)
            and _is_int(integrated_time)
            and _is_int(log_index)
        ):
            raise VerificationError(f"{_ENTRY}: malformed bundle: a field has the wrong type")
        try:
            signed_entry_timestamp = base64.b64decode(set_b64, validate=True)
        except binascii.Error:
            raise VerificationError(
                f"{_ENTRY}: malformed bundle: SignedEntryTimestamp is not base64"
            ) from None
        return cls(signed_entry_timestamp, body, integrated_time, log_index, log_id)

    def canonical_payload(self) -> bytes:
        """What Rekor signs: the RFC 8785 JSON of the bundle's payload (cosign's VerifySET)."""
        return rfc8785.dumps(
            {
                "body": self.body,
                "integratedTime": self.integrated_time,
                "logIndex": self.log_index,
                "logID": self.log_id,
            }
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_rekor_bundle(
    bundle: Mapping[str, Any],
    root: TrustedRoot,
    *,
    payload: bytes,
    signature: bytes,
    certificate_pem: bytes | None,
    public_key_pem: bytes | None = None,
) -> datetime:
    """Check cosign's Rekor bundle offline and return when the entry was logged (aware UTC).

    The SET must verify with the key of a trusted-root log whose id is the bundle's `logID`
    and whose validity covers the integrated time; the entry body (hashedrekord or rekord
    v0.0.1) must record the digest of `payload`, `signature` and `certificate_pem` (or
    `public_key_pem`). Each failed check raises `VerificationError` naming it.
    """
    if certificate_pem is None and public_key_pem is None:
        raise ValueError("verify_rekor_bundle needs the certificate or the public key")
    entry = _RekorBundle.parse(bundle)
    logs = [t for t in root.tlogs if t.log_id_hex == entry.log_id.lower()]
    if not logs:
        raise VerificationError(f"{_ENTRY}: log id {entry.log_id!r} is not in the trusted root")
    try:
        logged_at = datetime.fromtimestamp(entry.integrated_time, UTC)
    except (OverflowError, OSError, ValueError):
        raise VerificationError(
            f"{_ENTRY}: malformed bundle: integratedTime {entry.integrated_time} is out of range"
        ) from None
    current = [t for t in logs if t.valid_for.contains(logged_at)]
    if not current:
        raise VerificationError(
            f"{_ENTRY}: log id {entry.log_id!r} is not in the trusted root at the entry's "
            f"integrated time {logged_at.isoformat()} (the log is trusted "
            + ", ".join(str(t.valid_for) for t in logs)
            + ")"
        )
    canonical = entry.canonical_payload()
    if not any(_set_verifies(t, entry.signed_entry_timestamp, canonical) for t in current):
        raise VerificationError(
            f"{_ENTRY}: signed entry timestamp invalid "
            f"(not signed by log {entry.log_id[:16]}… for this body, time and index)"
        )
    _check_body(entry.body, payload, signature, certificate_pem, public_key_pem)
    return logged_at


def _set_verifies(log: TransparencyLog, signature: bytes, data: bytes) -> bool:
    key: LogPublicKey = log.public_key
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            # cosign hashes the SET payload with SHA-256 whatever the curve.
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _check_body(
    body_b64: str,
    payload: bytes,
    signature: bytes,
    certificate_pem: bytes | None,
    public_key_pem: bytes | None,
) -> None:
    """The logged entry must be this signature: CVE-2022-36056 is trusting a SET of another."""
    try:
        body = json.loads(base64.b64decode(body_b64, validate=True))
        kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
        data, sig = spec["data"], spec["signature"]
        recorded_sig = base64.b64decode(sig["content"], validate=True)
        recorded_key = base64.b64decode(sig["publicKey"]["content"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise VerificationError(f"{_ENTRY}: body is not a Rekor entry: {exc}") from None
    if (kind, version) not in (("hashedrekord", "0.0.1"), ("rekord", "0.0.1")):
        raise VerificationError(f"{_ENTRY}: body is a {kind} {version} entry, not hashedrekord")
    if kind == "rekord" and sig.get("format", "x509") != "x509":
        raise VerificationError(f"{_ENTRY}: body has a {sig.get('format')!r} signature")
    _check_data(data, payload)
    if recorded_sig != signature:
        raise VerificationError(f"{_ENTRY}: body does not match the signature")
    if certificate_pem is not None:
        expected = _der_certificate(certificate_pem)
        if expected is None:
            raise VerificationError("certificate is not a PEM certificate")
        if _der_certificate(recorded_key) != expected:
            raise VerificationError(f"{_ENTRY}: body does not match the certificate")
    elif public_key_pem is not None:
        expected = _spki(public_key_pem)
        if expected is None:
            raise VerificationError("public key is not a PEM public key")
        if _spki(recorded_key) != expected:
            raise VerificationError(f"{_ENTRY}: body does not match the public key")


def _check_data(data: Any, payload: bytes) -> None:
    if not isinstance(data, dict):
        raise VerificationError(f"{_ENTRY}: body has no data")
    hashed = data.get("hash")
    if isinstance(hashed, dict):
        algorithm, value = hashed.get("algorithm"), hashed.get("value")
        if not isinstance(algorithm, str) or algorithm not in _HASHES or not isinstance(value, str):
            raise VerificationError(f"{_ENTRY}: body has an unsupported hash {algorithm!r}")
        actual = _HASHES[algorithm](payload).hexdigest()
        if value.lower() != actual:
            raise VerificationError(
                f"{_ENTRY}: body does not match the payload "
                f"({algorithm} {value} logged, {actual} signed)"
            )
        return
    content = data.get("content")
    if isinstance(content, str):  # rekord may log the data itself
        try:
            logged = base64.b64decode(content, validate=True)
        except binascii.Error:
            logged = b""
        if logged != payload:
            raise VerificationError(f"{_ENTRY}: body does not match the payload")
        return
    raise VerificationError(f"{_ENTRY}: body has neither a data hash nor content")


def _der_certificate(pem: bytes) -> bytes | None:
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return None


def _spki(pem: bytes) -> bytes | None:
    """The DER SubjectPublicKeyInfo of a PEM public key, or of a PEM certificate's key."""
    try:
        if b"CERTIFICATE" in pem:
            key: Any = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
        spki: bytes = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError):
        return None
    return spki


def verify_certificate(
    certificate_pem: bytes,
    chain_pem: bytes | None,
    root: TrustedRoot,
    identities: Sequence[Identity],
    at: datetime,
) -> x509.Certificate:
    """Check a Fulcio leaf at signing time `at` and return it.

    The leaf must be valid at `at`, have the codeSigning usage, chain (through `chain_pem`'s
    intermediates and the trusted root's) to a root CA of `root` whose validity covers `at`,
    with every certificate of the path valid at `at`; and name an OIDC issuer and subject
    that both match one `Identity` (Go regexps, unanchored; see `match_identity`). An empty
    `identities` matches nothing. Raises `VerificationError` naming the failed check.
    """
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    leaf = _load_certificate(certificate_pem)
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not start <= at <= end:
        raise VerificationError(
            f"certificate was not valid at signing time {at.isoformat()}: "
            f"it is valid from {start.isoformat()} to {end.isoformat()}"
        )
    if ExtendedKeyUsageOID.CODE_SIGNING not in _extended_key_usages(leaf):
        raise VerificationError("certificate is not for code signing (no codeSigning usage)")
    _verify_chain(leaf, _load_chain(chain_pem), root, at)
    match_identity(leaf, identities)
    return leaf


def _load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise VerificationError(f"certificate is not a PEM certificate: {exc}") from None


def _load_chain(pem: bytes | None) -> list[x509.Certificate]:
    if not pem or not pem.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise VerificationError(f"certificate chain is not PEM certificates: {exc}") from None


def _extended_key_usages(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def _verify_chain(
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    root: TrustedRoot,
    at: datetime,
) -> None:
    authorities = [ca for ca in root.certificate_authorities if ca.valid_for.contains(at)]
    if not authorities:
        raise VerificationError(
            "certificate chain does not lead to a trusted root: no certificate authority "
            f"of the trusted root is valid at signing time {at.isoformat()}"
        )
    intermediates = [*chain, *(c for ca in authorities for c in ca.intermediates)]
    # The web PKI profile of cryptography's verifier, less its EKU rule: Fulcio certificates
    # carry codeSigning (checked above), not serverAuth/clientAuth (as sigstore-python does).
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([ca.root for ca in authorities]))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except (X509VerificationError, x509.UnsupportedGeneralNameType) as exc:
        raise VerificationError(
            f"certificate chain does not lead to a trusted root at signing time "
            f"{at.isoformat()}: {exc}"
        ) from None


def match_identity(certificate: x509.Certificate, identities: Sequence[Identity]) -> str:
    """The SAN of `certificate` that, with its OIDC issuer, matches one of `identities`.

    As Flux's `matchOIDCIdentity` (cosign's `--certificate-*-regexp`): an entry matches when
    its issuer expression matches the issuer and its subject expression matches any SAN;
    any entry may match. Raises `VerificationError` on no match or an invalid expression.
    """
    issuer = oidc_issuer(certificate)
    subjects = subject_alternative_names(certificate)
    for identity in identities:
        try:
            go_search(identity.subject, "")  # as cosign, refuse a bad expression even unused
            if go_search(identity.issuer, issuer):
                for subject in subjects:
                    if go_search(identity.subject, subject):
                        return subject
        except ValueError as exc:
            raise VerificationError(f"identity expression: {exc}") from None
    raise VerificationError(
        f"identity mismatch: no matchOIDCIdentity entry matches issuer {issuer!r} "
        f"and subject {', '.join(subjects)!r}"
    )


def oidc_issuer(certificate: x509.Certificate) -> str:
    """The OIDC issuer Fulcio recorded: the v2 extension (DER UTF8String), else the v1 one."""
    for oid, decode in ((_ISSUER_V2, _der_utf8), (_ISSUER_V1, _raw_utf8)):
        try:
            extension = certificate.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = extension.value if isinstance(extension, x509.UnrecognizedExtension) else b""
        text = decode(raw)
        if text is None:
            raise VerificationError(f"certificate has a malformed OIDC issuer extension {oid}")
        return text
    return ""


def subject_alternative_names(certificate: x509.Certificate) -> list[str]:
    """The SANs cosign matches identities against, in its order: DNS, email, IP, URI, otherName."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    names += san.get_values_for_type(x509.DNSName)
    names += san.get_values_for_type(x509.RFC822Name)
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _OTHERNAME_SAN:
            text = _der_utf8(other.value)
            if text is not None:
                names.append(text)
    return names


def certificate_identity(certificate: x509.Certificate) -> tuple[str, str]:
    """(OIDC issuer, subject) of a Fulcio certificate, for messages; SANs joined by ", "."""
    return oidc_issuer(certificate), ", ".join(subject_alternative_names(certificate))


def _raw_utf8(raw: bytes) -> str | None:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _der_utf8(raw: bytes) -> str | None:
    """Decode a DER UTF8String (tag 12) that fills `raw`, or None."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    length, offset = raw[1], 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or len(raw) < 2 + size:
            return None
        length, offset = int.from_bytes(raw[2 : 2 + size], "big"), 2 + size
    if len(raw) != offset + length:
        return None
    return _raw_utf8(raw[offset:])
