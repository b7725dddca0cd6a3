"""Sigstore's trusted root: which Fulcio CAs and Rekor logs keyless signatures may chain to.

The format is sigstore's `trusted_root.json` (media type
`application/vnd.dev.sigstore.trustedroot+json;version=0.1`, protobuf-specs `TrustedRoot`),
the file `cosign verify --trusted-root` and Flux's keyless verification read. Only the parts
the classic cosign verification needs are parsed: certificate authorities and transparency logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ._errors import VerificationError

__all__ = [
    "MEDIA_TYPE",
    "CertificateAuthority",
    "LogPublicKey",
    "TransparencyLog",
    "TrustedRoot",
    "ValidityPeriod",
]

MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.trustedroot"

# The Sigstore public-good root that sigstore-python ships for bootstrapping its TUF client.
_DEFAULT_PACKAGE = "sigstore._store"
_DEFAULT_FILE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json"

_BEGINNING = datetime.min.replace(tzinfo=UTC)

LogPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class ValidityPeriod:
    """When a CA or log may be trusted: from `start`, until `end` (open-ended when None)."""

    start: datetime
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) falls in the period, ends included."""
        return self.start <= at and (self.end is None or at <= self.end)

    def __str__(self) -> str:
        end = self.end.isoformat() if self.end else "open-ended"
        return f"{self.start.isoformat()} to {end}"


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA: its chain, issuing certificate first and self-signed root last."""

    certificates: tuple[x509.Certificate, ...]
    valid_for: ValidityPeriod
    uri: str = ""

    @property
    def root(self) -> x509.Certificate:
        """The CA's trust anchor, the last certificate of the chain."""
        return self.certificates[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """The chain's certificates below the root."""
        return self.certificates[:-1]


@dataclass(frozen=True)
class TransparencyLog:
    """A Rekor log: the key that signs its entry timestamps and the id entries name it by."""

    public_key: LogPublicKey
    public_key_der: bytes
    key_details: str
    valid_for: ValidityPeriod
    log_id: bytes
    base_url: str = ""

    @property
    def log_id_hex(self) -> str:
        """The log id as cosign's bundle annotation spells it (`Payload.logID`)."""
        return self.log_id.hex()


@dataclass(frozen=True)
class TrustedRoot:
    """The CAs and transparency logs of a sigstore trusted root.

    `data` keeps the document as read, for verifiers (sigstore-python) that parse it themselves.
    """

    certificate_authorities: tuple[CertificateAuthority, ...]
    tlogs: tuple[TransparencyLog, ...]
    data: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def from_json(cls, data: bytes | str) -> TrustedRoot:
        """Parse a `trusted_root.json` document; raises `VerificationError` when malformed."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise VerificationError(f"invalid trusted root: not JSON: {exc}") from None
        try:
            return cls._parse(doc, raw)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VerificationError(f"invalid trusted root: {_describe(exc)}") from None

    @classmethod
    def default(cls) -> TrustedRoot:
        """The Sigstore public-good trusted root embedded in sigstore-python (no network)."""
        data = resources.files(_DEFAULT_PACKAGE).joinpath(_DEFAULT_FILE).read_bytes()
        return cls.from_json(data)

    @classmethod
    def _parse(cls, doc: Any, raw: bytes) -> TrustedRoot:
        if not isinstance(doc, dict):
            raise TypeError("the document is not a JSON object")
        media_type = doc.get("mediaType")
        if not isinstance(media_type, str) or not media_type.startswith(_MEDIA_TYPE_PREFIX):
            raise ValueError(f"unknown mediaType {media_type!r} (want {MEDIA_TYPE!r})")
        cas = tuple(
            _certificate_authority(_obj(item, f"certificateAuthorities[{i}]"), i)
            for i, item in enumerate(_list(doc, "certificateAuthorities"))
        )
        tlogs = tuple(
            _transparency_log(_obj(item, f"tlogs[{i}]"), i)
            for i, item in enumerate(_list(doc, "tlogs"))
        )
        return cls(cas, tlogs, raw)


class _FieldError(ValueError):
    pass


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _FieldError(f"{where} is not an object")
    return value


def _list(doc: Mapping[str, Any], name: str) -> list[Any]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise _FieldError(f"{name} is not a list")
    return value


def _str(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise _FieldError(f"{where}.{name} is missing or not a string")
    return value


def _b64(doc: Mapping[str, Any], name: str, where: str) -> bytes:
    try:
        return base64.b64decode(_str(doc, name, where), validate=True)
    except binascii.Error as exc:
        raise _FieldError(f"{where}.{name} is not base64: {exc}") from None


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise _FieldError(f"{where} is not a timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"{where} is not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _validity(doc: Mapping[str, Any], where: str) -> ValidityPeriod:
    # An absent period or start is read as unbounded rather than refusing the whole root.
    if doc.get("validFor") is None:
        return ValidityPeriod(_BEGINNING)
    valid_for = _obj(doc.get("validFor"), f"{where}.validFor")
    start_raw = valid_for.get("start")
    start = _BEGINNING if start_raw is None else _time(start_raw, f"{where}.validFor.start")
    end_raw = valid_for.get("end")
    end = None if end_raw is None else _time(end_raw, f"{where}.validFor.end")
    return ValidityPeriod(start, end)


def _certificate_authority(doc: Mapping[str, Any], index: int) -> CertificateAuthority:
    where = f"certificateAuthorities[{index}]"
    chain = _obj(doc.get("certChain"), f"{where}.certChain")
    raws = _list(chain, "certificates")
    if not raws:
        raise _FieldError(f"{where}.certChain.certificates is empty")
    certificates = []
    for i, item in enumerate(raws):
        at = f"{where}.certChain.certificates[{i}]"
        der = _b64(_obj(item, at), "rawBytes", at)
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise _FieldError(f"{at} is not a DER certificate: {exc}") from None
    uri = doc.get("uri")
    return CertificateAuthority(
        tuple(certificates), _validity(doc, where), uri if isinstance(uri, str) else ""
    )


def _transparency_log(doc: Mapping[str, Any], index: int) -> TransparencyLog:
    where = f"tlogs[{index}]"
    key = _obj(doc.get("publicKey"), f"{where}.publicKey")
    der = _b64(key, "rawBytes", f"{where}.publicKey")
    try:
        public_key = load_der_public_key(der)
    except ValueError as exc:
        raise _FieldError(f"{where}.publicKey.rawBytes is not a DER public key: {exc}") from None
    if not isinstance(
        public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
    ):
        raise _FieldError(f"{where}.publicKey is of unsupported type {type(public_key).__name__}")
    log_id_doc = doc.get("logId")
    if log_id_doc is None:
        # Rekor v1 names a log by the SHA-256 of its DER public key.
        log_id = hashlib.sha256(der).digest()
    else:
        log_id = _b64(_obj(log_id_doc, f"{where}.logId"), "keyId", f"{where}.logId")
    details = key.get("keyDetails")
    base_url = doc.get("baseUrl")
    return TransparencyLog(
        public_key=public_key,
        public_key_der=der,
        key_details=details if isinstance(details, str) else "",
        valid_for=_validity(key, f"{where}.publicKey"),
        log_id=log_id,
        base_url=base_url if isinstance(base_url, str) else "",
    )
