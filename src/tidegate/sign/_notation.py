"""Notary Project (Notation) signatures: trust policy, JWS and COSE envelopes, verification.

What Flux's source-controller does for `OCIRepository.spec.verify.provider: notation`, through
notation-go: find the artifact's referrers of type `application/vnd.cncf.notary.signature`,
pick the trust policy statement for the repository, and evaluate the signatures in the order
of the Notary Project trust-store-trust-policy spec (integrity, authenticity, trusted
identity, expiry, authentic timestamp, revocation; then the signed descriptor must equal the
artifact's). The first signature without a critical (enforced) failure wins.

Revocation (OCSP/CRL) needs the network and is not checked; it is treated as skipped at
every level. RFC 3161 timestamp countersignatures are not verified: a signature carrying one
fails the authentic timestamp check (logged, not fatal, below `strict`). Verification plugins
(`io.cncf.notary.verificationPlugin`) are not supported and fail the integrity check.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import io
import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from tidegate.oci import OCIError, Reference, Registry

from ._errors import VerificationError

log = logging.getLogger(__name__)

# How `verify_notation` begins its answer when the trust policy skipped or only audited the
# check: nothing was verified, though nothing failed.
NOT_VERIFIED = "not verified:"
NOTATION_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS_MEDIA_TYPE = "application/jose+json"
COSE_MEDIA_TYPE = "application/cose"
ENVELOPE_MEDIA_TYPES = (JWS_MEDIA_TYPE, COSE_MEDIA_TYPE)
PAYLOAD_MEDIA_TYPE = "application/vnd.cncf.notary.payload.v1+json"
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"

SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"
H_SCHEME = "io.cncf.notary.signingScheme"
H_SIGNING_TIME = "io.cncf.notary.signingTime"
H_AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
H_EXPIRY = "io.cncf.notary.expiry"
H_TIMESTAMP = "io.cncf.notary.timestampSignature"
H_PLUGIN = "io.cncf.notary.verificationPlugin"
H_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
_KNOWN_CRITICAL = {H_SCHEME, H_AUTHENTIC_TIME, H_EXPIRY}

MAX_ENVELOPE_SIZE = 4 << 20
MAX_SIGNATURES = 64

# Flux's secret layout (fluxcd/source-controller, internal/controller/ocirepository_controller.go,
# case "notation", and internal/oci/notation/notation.go): the policy is the key
# `trustpolicy.json` (notation.DefaultTrustPolicyKey); every key ending in `.crt` or `.pem` is a
# certificate; its trustStore.GetCertificates ignores the store type and name and returns all of
# them, decoding only the first PEM block of each key (pem.Decode) or else DER.
TRUST_POLICY_KEY = "trustpolicy.json"
_CERT_SUFFIXES = (".crt", ".pem")

# -- trust policy ---------------------------------------------------------------------------

INTEGRITY = "integrity"
AUTHENTICITY = "authenticity"
AUTHENTIC_TIMESTAMP = "authenticTimestamp"
EXPIRY = "expiry"
REVOCATION = "revocation"
ENFORCE, LOG, SKIP = "enforce", "log", "skip"

# The spec's table of levels (trust-store-trust-policy.md, "Signature Verification details").
_LEVELS: dict[str, dict[str, str]] = {
    "strict": dict.fromkeys(
        (INTEGRITY, AUTHENTICITY, AUTHENTIC_TIMESTAMP, EXPIRY, REVOCATION), ENFORCE
    ),
    "permissive": {
        INTEGRITY: ENFORCE,
        AUTHENTICITY: ENFORCE,
        AUTHENTIC_TIMESTAMP: LOG,
        EXPIRY: LOG,
        REVOCATION: LOG,
    },
    "audit": {
        INTEGRITY: ENFORCE,
        AUTHENTICITY: LOG,
        AUTHENTIC_TIMESTAMP: LOG,
        EXPIRY: LOG,
        REVOCATION: LOG,
    },
    "skip": dict.fromkeys((INTEGRITY, AUTHENTICITY, AUTHENTIC_TIMESTAMP, EXPIRY, REVOCATION), SKIP),
}
_OVERRIDES = {
    AUTHENTICITY: (ENFORCE, LOG),
    AUTHENTIC_TIMESTAMP: (ENFORCE, LOG),
    EXPIRY: (ENFORCE, LOG),
    REVOCATION: (ENFORCE, LOG, SKIP),
}
_STORE_TYPES = ("ca", "signingAuthority", "tsa")
_MANDATORY_RDNS = ("C", "ST", "O")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?$"
)
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$"
)


@dataclass(frozen=True)
class TrustPolicyStatement:
    """One entry of `trustPolicies`."""

    name: str
    registry_scopes: tuple[str, ...]
    level: str
    enforcement: Mapping[str, str]
    trust_stores: tuple[str, ...]
    trusted_identities: tuple[str, ...]
    identities: tuple[Mapping[str, str], ...] = field(default=())  # parsed x509.subject DNs


@dataclass(frozen=True)
class TrustPolicy:
    """A validated `trustpolicy.json` document (version 1.0)."""

    statements: tuple[TrustPolicyStatement, ...]

    @classmethod
    def from_json(cls, data: bytes | str) -> TrustPolicy:
        """Parse and validate a trust policy as notation-go's `Document.Validate` does."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise VerificationError(f"invalid trust policy: not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise VerificationError("invalid trust policy: the document must be a JSON object")
        return cls(_validate_policy(doc))

    def statement_for(self, repository: str) -> TrustPolicyStatement:
        """The statement applying to `host/repo`: an exact registry scope, else the `*` one."""
        wildcard = None
        for statement in self.statements:
            if repository in statement.registry_scopes:
                return statement
            if "*" in statement.registry_scopes:
                wildcard = statement
        if wildcard is None:
            raise VerificationError(
                f"artifact '{repository}' has no applicable trust policy statement: "
                "no registryScopes entry names it and there is no '*' statement"
            )
        return wildcard

    def cleaned(self) -> TrustPolicy:
        """Flux's `CleanTrustPolicy`: `skip` statements lose their trust stores and identities."""
        return TrustPolicy(
            tuple(
                TrustPolicyStatement(s.name, s.registry_scopes, s.level, s.enforcement, (), ())
                if s.level == "skip"
                else s
                for s in self.statements
            )
        )


def _invalid(message: str) -> VerificationError:
    return VerificationError(f"invalid trust policy: {message}")


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{what} must be a list of strings")
    return tuple(value)


def _validate_policy(doc: dict[str, Any]) -> tuple[TrustPolicyStatement, ...]:
    version = doc.get("version")
    if not version:
        raise _invalid("trust policy document has empty version, version must be specified")
    if version != "1.0":
        raise _invalid(f"trust policy document uses unsupported version {version!r}")
    raw = doc.get("trustPolicies")
    if not isinstance(raw, list) or not raw:
        raise _invalid("trust policy document can not have zero trust policy statements")
    statements: list[TrustPolicyStatement] = []
    seen_scopes: dict[str, str] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise _invalid("each trust policy statement must be a JSON object")
        statement = _validate_statement(entry)
        if any(s.name == statement.name for s in statements):
            raise _invalid(
                f"multiple trust policy statements use the same name {statement.name!r}, "
                "statement names must be unique"
            )
        for scope in statement.registry_scopes:
            if scope in seen_scopes:
                raise _invalid(
                    f"registry scope {scope!r} is present in multiple trust policy statements, "
                    "one registry scope value can only be associated with one statement"
                )
            seen_scopes[scope] = statement.name
        statements.append(statement)
    return tuple(statements)


def _validate_statement(entry: dict[str, Any]) -> TrustPolicyStatement:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("a trust policy statement is missing a name, every statement requires one")
    where = f"trust policy statement {name!r}"
    verification = entry.get("signatureVerification")
    if not isinstance(verification, dict):
        raise _invalid(f"{where} is missing signatureVerification")
    level = verification.get("level")
    if level not in _LEVELS:
        raise _invalid(
            f"{where} uses invalid signatureVerification level {level!r}, "
            "supported levels are strict, permissive, audit and skip"
        )
    enforcement = dict(_LEVELS[level])
    override = verification.get("override") or {}
    if not isinstance(override, dict):
        raise _invalid(f"{where} has an override that is not a map")
    if override and level == "skip":
        raise _invalid(f"{where} uses verification level 'skip', which cannot be overridden")
    for key, action in override.items():
        if key not in _OVERRIDES:
            raise _invalid(
                f"{where} has an override for {key!r}; only authenticity, authenticTimestamp, "
                "expiry and revocation can be overridden"
            )
        if action not in _OVERRIDES[key]:
            raise _invalid(f"{where} overrides {key} with unsupported action {action!r}")
        enforcement[key] = action
    scopes = _strings(entry.get("registryScopes"), f"{where} registryScopes")
    if not scopes:
        raise _invalid(f"{where} has zero registry scopes, it must specify at least one")
    if len(scopes) > 1 and "*" in scopes:
        raise _invalid(f"{where} uses wildcard registry scope '*' together with other scopes")
    for scope in scopes:
        if scope != "*":
            _validate_scope(scope)
    stores = _strings(entry.get("trustStores"), f"{where} trustStores")
    identities = _strings(entry.get("trustedIdentities"), f"{where} trustedIdentities")
    if level == "skip":
        if stores or identities:
            # notation-go rejects this, but Flux's CleanTrustPolicy drops them first (warning).
            log.warning(
                "trust policy statement %r is set to skip signature verification but "
                "configured with trust stores and/or trusted identities; ignoring them",
                name,
            )
        return TrustPolicyStatement(name, scopes, level, enforcement, (), ())
    if not stores:
        raise _invalid(f"{where} is either missing trust stores or trusted identities")
    for store in stores:
        kind, sep, store_name = store.partition(":")
        if not sep or kind not in _STORE_TYPES or not store_name:
            raise _invalid(
                f"{where} uses trust store {store!r}, expected '<type>:<name>' with type one "
                f"of {', '.join(_STORE_TYPES)}"
            )
    if not identities:
        raise _invalid(f"{where} has zero trusted identities")
    parsed: list[Mapping[str, str]] = []
    if "*" in identities:
        if len(identities) > 1:
            raise _invalid(f"{where} uses the wildcard trusted identity '*' with other values")
    else:
        for identity in identities:
            prefix, sep, value = identity.partition(":")
            if not sep:
                raise _invalid(f"{where} has trusted identity {identity!r} missing separator")
            if prefix.strip() != "x509.subject":
                raise _invalid(
                    f"{where} has trusted identity {identity!r} with an unsupported type; "
                    "only 'x509.subject: <DN>' and '*' are supported"
                )
            dn = _parse_dn(value, where)
            missing = [a for a in _MANDATORY_RDNS if a not in dn]
            if missing:
                raise _invalid(
                    f"{where} has trusted identity {identity!r} without mandatory RDN "
                    "attributes C, ST and O"
                )
            parsed.append(dn)
        for i, one in enumerate(parsed):
            for other in parsed[i + 1 :]:
                if _is_subset(one, other) or _is_subset(other, one):
                    raise _invalid(f"{where} has overlapping x509 trustedIdentities")
    return TrustPolicyStatement(name, scopes, level, enforcement, stores, identities, tuple(parsed))


def _validate_scope(scope: str) -> None:
    domain, sep, repository = scope.partition("/")
    if "*" in scope or not sep or not _DOMAIN.match(domain) or not _REPOSITORY.match(repository):
        raise _invalid(
            f"registry scope {scope!r} is not valid, make sure it is a fully qualified "
            "repository without the scheme, protocol or tag, e.g. domain.com/my/repository"
        )


def _parse_dn(text: str, where: str) -> dict[str, str]:
    """`C=US, ST=WA, O=acme` → {"C": "US", …}; RFC 4514 escapes; one value per attribute."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text.strip())
    for ch in chars:
        if ch == "\\":
            current.append(ch + next(chars, ""))
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    dn: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise _invalid(f"{where}: distinguished name {text.strip()!r} is not valid")
        if key in dn:
            raise _invalid(
                f"{where}: distinguished name {text.strip()!r} has duplicate RDN attribute "
                f"for {key!r}, DN can only have unique RDN attributes"
            )
        dn[key.upper()] = re.sub(r"\\(.)", r"\1", value)
    return dn


def _is_subset(wanted: Mapping[str, str], dn: Mapping[str, str]) -> bool:
    return all(dn.get(k) == v for k, v in wanted.items())


def _subject_dn(cert: x509.Certificate) -> dict[str, str] | None:
    """The subject as notation reads it: attribute short name → value; None on duplicates."""
    dn: dict[str, str] = {}
    for attr in cert.subject:
        key = attr.rfc4514_attribute_name.upper()
        if key in dn:
            return None
        dn[key] = attr.value if isinstance(attr.value, str) else attr.value.decode()
    return dn


# -- Flux's secret layout -------------------------------------------------------------------


def load_certificates(data: bytes, name: str = "certificate") -> list[x509.Certificate]:
    """Certificates as Flux's trust store reads a secret key: the first PEM block, else DER."""
    match = re.search(rb"-----BEGIN ([^-]+)-----\r?\n(.*?)-----END \1-----", data, re.DOTALL)
    if match:
        try:
            raw = base64.b64decode(re.sub(rb"\s+", b"", match.group(2)), validate=True)
        except binascii.Error as exc:
            raise VerificationError(f"failed to parse certificate '{name}': {exc}") from exc
    else:
        raw = data
    certs: list[x509.Certificate] = []
    rest = raw
    try:
        while rest:
            length = _der_length(rest)
            certs.append(x509.load_der_x509_certificate(rest[:length]))
            rest = rest[length:]
    except ValueError as exc:
        raise VerificationError(f"failed to parse certificate '{name}': {exc}") from exc
    if not certs:
        raise VerificationError(f"failed to parse certificate '{name}': no certificate")
    return certs


def _der_length(data: bytes) -> int:
    if len(data) < 2 or data[0] != 0x30:
        raise ValueError("not a DER certificate")
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        raise ValueError("bad DER length")
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def trust_material_from_secret(
    data: Mapping[str, bytes], secret: str = "verify secret"
) -> tuple[TrustPolicy, dict[str, list[x509.Certificate]]]:
    """The trust policy and trust stores Flux builds from `spec.verify.secretRef`.

    Every `<type>:<name>` store the policy names gets all the secret's certificates, because
    Flux's in-memory trust store ignores type and name. `skip` statements are cleaned as Flux's
    `CleanTrustPolicy` does.
    """
    if TRUST_POLICY_KEY not in data:
        raise VerificationError(f"'{TRUST_POLICY_KEY}' not found in secret '{secret}'")
    policy = TrustPolicy.from_json(data[TRUST_POLICY_KEY]).cleaned()
    certs: list[x509.Certificate] = []
    for key in sorted(data):
        if key.endswith(_CERT_SUFFIXES):
            certs.extend(load_certificates(data[key], key))
    if not certs:
        raise VerificationError(f"no certificates found in secret '{secret}'")
    stores = {store: list(certs) for s in policy.statements for store in s.trust_stores}
    return policy, stores


# -- envelopes ------------------------------------------------------------------------------

_JWS_ALGS: dict[str, tuple[str, int]] = {
    "ES256": ("ec", 256),
    "ES384": ("ec", 384),
    "ES512": ("ec", 521),
    "PS256": ("rsa", 2048),
    "PS384": ("rsa", 3072),
    "PS512": ("rsa", 4096),
}
_COSE_ALGS = {-7: "ES256", -35: "ES384", -36: "ES512", -37: "PS256", -38: "PS384", -39: "PS512"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


@dataclass(frozen=True)
class _Envelope:
    alg: str
    payload: bytes
    signed: bytes  # the bytes the signature covers
    signature: bytes
    chain: list[x509.Certificate]
    scheme: str
    signing_time: datetime.datetime
    expiry: datetime.datetime | None
    timestamp: bool


def _b64url(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"invalid signature envelope: {what} is not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VerificationError(f"invalid signature envelope: {what} is not base64url") from exc


def _parse_time(value: Any, what: str) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError as exc:
            raise VerificationError(
                f"invalid signature envelope: {what} {value!r} is not an RFC 3339 time"
            ) from exc
    else:
        raise VerificationError(f"invalid signature envelope: {what} is not a time")
    if parsed.tzinfo is None:
        raise VerificationError(f"invalid signature envelope: {what} has no time zone")
    return parsed


def _certificates(raw: Any, what: str) -> list[x509.Certificate]:
    if isinstance(raw, bytes):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise VerificationError(
            f"invalid signature envelope: {what} certificate chain is missing or empty"
        )
    chain = []
    for item in raw:
        try:
            der = base64.b64decode(item, validate=True) if isinstance(item, str) else item
            if not isinstance(der, bytes):
                raise ValueError("not a byte string")
            chain.append(x509.load_der_x509_certificate(der))
        except (ValueError, binascii.Error) as exc:
            raise VerificationError(
                f"invalid signature envelope: bad certificate in {what}: {exc}"
            ) from exc
    return chain


def _signed_attributes(header: Mapping[Any, Any], crit: Any, what: str) -> tuple[str, Any, Any]:
    """Check `crit` and the notary attributes; return (scheme, signing time, expiry)."""
    if not isinstance(crit, list | tuple) or not crit:
        raise VerificationError(f"invalid signature envelope: {what} header 'crit' is missing")
    for name in crit:
        if name in (H_PLUGIN, H_PLUGIN_MIN_VERSION):
            raise VerificationError(
                f"invalid signature envelope: the signature requires verification plugin "
                f"{header.get(H_PLUGIN)!r}; verification plugins are not supported"
            )
        if name not in _KNOWN_CRITICAL:
            raise VerificationError(
                f"invalid signature envelope: unsupported critical header {name!r}"
            )
        if name not in header:
            raise VerificationError(
                f"invalid signature envelope: critical header {name!r} is not present"
            )
    if H_SCHEME not in crit:
        raise VerificationError(
            f"invalid signature envelope: {H_SCHEME!r} is missing from the critical headers"
        )
    for name in (H_EXPIRY, H_AUTHENTIC_TIME):
        if name in header and name not in crit:
            raise VerificationError(f"invalid signature envelope: {name!r} must be critical")
    scheme = header.get(H_SCHEME)
    if scheme == SCHEME_X509:
        time_header = H_SIGNING_TIME
    elif scheme == SCHEME_SIGNING_AUTHORITY:
        time_header = H_AUTHENTIC_TIME
    else:
        raise VerificationError(
            f"invalid signature envelope: unsupported signing scheme {scheme!r}"
        )
    if time_header not in header:
        raise VerificationError(f"invalid signature envelope: signing time {time_header!r} missing")
    return scheme, header[time_header], header.get(H_EXPIRY)


def _parse_jws(data: bytes) -> _Envelope:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"invalid signature envelope: JWS is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not all(
        k in doc for k in ("payload", "protected", "signature")
    ):
        raise VerificationError(
            "invalid signature envelope: not a flattened JWS JSON serialization "
            "(payload, protected, header, signature)"
        )
    protected_raw = _b64url(doc["protected"], "protected header")
    try:
        protected = json.loads(protected_raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError("invalid signature envelope: protected header is not JSON") from exc
    if not isinstance(protected, dict):
        raise VerificationError("invalid signature envelope: protected header is not an object")
    unprotected = doc.get("header")
    if not isinstance(unprotected, dict):
        raise VerificationError("invalid signature envelope: unprotected header is missing")
    alg = protected.get("alg")
    if alg not in _JWS_ALGS:
        raise VerificationError(f"invalid signature envelope: unsupported 'alg' {alg!r}")
    if protected.get("cty") != PAYLOAD_MEDIA_TYPE:
        raise VerificationError(
            f"invalid signature envelope: payload content type {protected.get('cty')!r} "
            "not supported"
        )
    scheme, signing_time, expiry = _signed_attributes(protected, protected.get("crit"), "JWS")
    return _Envelope(
        alg=alg,
        payload=_b64url(doc["payload"], "payload"),
        signed=f"{doc['protected']}.{doc['payload']}".encode(),
        signature=_b64url(doc["signature"], "signature"),
        chain=_certificates(unprotected.get("x5c"), "x5c"),
        scheme=scheme,
        signing_time=_parse_time(signing_time, "signing time"),
        expiry=_parse_time(expiry, "expiry") if expiry is not None else None,
        timestamp=H_TIMESTAMP in unprotected,
    )


def _parse_cose(data: bytes) -> _Envelope:
    try:
        decoded = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on truncated/garbage input
        raise VerificationError(f"invalid signature envelope: COSE is not CBOR: {exc}") from exc
    if not isinstance(decoded, cbor2.CBORTag) or decoded.tag != 18:
        raise VerificationError("invalid signature envelope: not a COSE_Sign1_Tagged (tag 18)")
    message = decoded.value
    # cbor2 gives arrays inside a tag as tuples and maps as frozendicts.
    if not isinstance(message, list | tuple) or len(message) != 4:
        raise VerificationError("invalid signature envelope: COSE_Sign1 must have 4 elements")
    protected_raw, unprotected, payload, signature = message
    if not isinstance(protected_raw, bytes) or not isinstance(unprotected, Mapping):
        raise VerificationError("invalid signature envelope: malformed COSE headers")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise VerificationError("invalid signature envelope: COSE payload must be embedded")
    try:
        protected = cbor2.loads(protected_raw)
    except Exception as exc:
        raise VerificationError("invalid signature envelope: COSE protected header") from exc
    if not isinstance(protected, Mapping):
        raise VerificationError("invalid signature envelope: COSE protected header is not a map")
    alg = _COSE_ALGS.get(protected.get(1))  # type: ignore[arg-type]
    if alg is None:
        raise VerificationError(f"invalid signature envelope: unsupported alg {protected.get(1)!r}")
    if protected.get(3) != PAYLOAD_MEDIA_TYPE:
        raise VerificationError(
            f"invalid signature envelope: payload content type {protected.get(3)!r} not supported"
        )
    scheme, signing_time, expiry = _signed_attributes(protected, protected.get(2), "COSE")
    for name, value in ((H_SIGNING_TIME, signing_time), (H_EXPIRY, expiry)):
        if value is not None and not isinstance(value, datetime.datetime):
            raise VerificationError(
                f"invalid signature envelope: {name} must be a tag 1 epoch date/time"
            )
    sig_structure = cbor2.dumps(["Signature1", protected_raw, b"", payload])
    return _Envelope(
        alg=alg,
        payload=payload,
        signed=sig_structure,
        signature=signature,
        chain=_certificates(unprotected.get(33, protected.get(33)), "x5chain"),
        scheme=scheme,
        signing_time=_parse_time(signing_time, "signing time"),
        expiry=_parse_time(expiry, "expiry") if expiry is not None else None,
        timestamp=H_TIMESTAMP in unprotected,
    )


def _parse_envelope(data: bytes, media_type: str) -> _Envelope:
    if len(data) > MAX_ENVELOPE_SIZE:
        raise VerificationError(
            f"invalid signature envelope: larger than {MAX_ENVELOPE_SIZE} bytes"
        )
    if media_type == JWS_MEDIA_TYPE:
        return _parse_jws(data)
    if media_type == COSE_MEDIA_TYPE:
        return _parse_cose(data)
    raise VerificationError(f"unsupported signature envelope media type {media_type!r}")


# -- checks ---------------------------------------------------------------------------------


def _key_alg(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_size = {256: "ES256", 384: "ES384", 521: "ES512"}
        if key.curve.key_size in by_size:
            return by_size[key.curve.key_size]
    elif isinstance(key, rsa.RSAPublicKey):
        by_size = {2048: "PS256", 3072: "PS384", 4096: "PS512"}
        if key.key_size in by_size:
            return by_size[key.key_size]
    raise VerificationError(
        f"integrity check failed: signing certificate key {type(key).__name__} is not one "
        "the Notary Project allows (RSA 2048/3072/4096, ECDSA P-256/P-384/P-521)"
    )


def _check_signature(env: _Envelope) -> None:
    leaf = env.chain[0]
    expected = _key_alg(leaf)
    if env.alg != expected:
        raise VerificationError(
            f"integrity check failed: signature algorithm {env.alg} does not match the "
            f"signing certificate's key ({expected})"
        )
    digest = _HASHES[env.alg[2:]]()
    key = leaf.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            half = len(env.signature) // 2
            if len(env.signature) != 2 * ((key.curve.key_size + 7) // 8):
                raise InvalidSignature
            der = encode_dss_signature(
                int.from_bytes(env.signature[:half], "big"),
                int.from_bytes(env.signature[half:], "big"),
            )
            key.verify(der, env.signed, ec.ECDSA(digest))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(
                env.signature,
                env.signed,
                padding.PSS(padding.MGF1(digest), digest.digest_size),
                digest,
            )
    except InvalidSignature as exc:
        raise VerificationError(
            "integrity check failed: the signature does not verify with the signing "
            "certificate's key (tampered payload or signature)"
        ) from exc


def _check_chain(chain: Sequence[x509.Certificate]) -> None:
    """notation-core-go's ValidateCodeSigningCertChain, without the time checks."""
    leaf = chain[0]
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise VerificationError(
                "integrity check failed: signing certificate is a CA certificate"
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        raise VerificationError(
            "integrity check failed: signing certificate's key usage must include digitalSignature"
        )
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise VerificationError(
                "integrity check failed: signing certificate's extended key usage must "
                "include codeSigning"
            )
    except x509.ExtensionNotFound:
        pass
    for child, parent in itertools.pairwise(chain):
        try:
            ca = parent.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise VerificationError(
                f"integrity check failed: certificate '{parent.subject.rfc4514_string()}' in "
                "the chain is not a CA"
            )
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise VerificationError(
                f"integrity check failed: invalid certificate chain: "
                f"'{child.subject.rfc4514_string()}' is not issued by "
                f"'{parent.subject.rfc4514_string()}'"
            ) from exc
    root = chain[-1]
    try:
        root.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise VerificationError(
            "integrity check failed: invalid certificate chain: it does not end with a "
            f"self-signed root (last is '{root.subject.rfc4514_string()}')"
        ) from exc


@dataclass
class _Outcome:
    subject: str
    payload: bytes
    logged: list[str] = field(default_factory=list)
    authenticity_failed: bool = False


def _check(
    outcome: _Outcome, enforcement: Mapping[str, str], kind: str, failure: str | None
) -> None:
    """Enforce or log one validation's failure, as the statement's level says."""
    if failure is None:
        return
    action = enforcement.get(kind, ENFORCE)
    if action == ENFORCE:
        raise VerificationError(failure)
    if action == LOG:
        log.warning("notation: %s (logged by the trust policy)", failure)
        outcome.logged.append(failure)
        if kind == AUTHENTICITY:
            outcome.authenticity_failed = True


def _verify(
    envelope: bytes,
    media_type: str,
    *,
    digest: str,
    media_type_of_target: str,
    size: int,
    statement: TrustPolicyStatement,
    certificates: Mapping[str, Sequence[x509.Certificate]],
    at: datetime.datetime,
) -> _Outcome:
    enforcement = statement.enforcement
    # Integrity: always enforced.
    env = _parse_envelope(envelope, media_type)
    _check_signature(env)
    _check_chain(env.chain)
    if env.expiry is not None and env.expiry <= env.signing_time:
        raise VerificationError(
            "integrity check failed: expiry cannot be equal or before the signing time"
        )
    leaf = env.chain[0]
    outcome = _Outcome(leaf.subject.rfc4514_string(), env.payload)

    # Authenticity: a certificate of the chain is in a trust store of the scheme's type.
    kind = "ca" if env.scheme == SCHEME_X509 else "signingAuthority"
    trusted = [
        cert
        for store in dict.fromkeys(statement.trust_stores)
        if store.partition(":")[0] == kind
        for cert in certificates.get(store, ())
    ]
    failure = None
    if not trusted:
        failure = (
            f"authenticity check failed: no trusted certificates are found in the {kind} trust "
            f"stores of trust policy statement {statement.name!r}"
        )
    elif not any(t == c for t in trusted for c in env.chain):
        failure = (
            "authenticity check failed: signature is not produced by a trusted signer: the "
            f"certificate chain of '{outcome.subject}' does not lead to a certificate in "
            f"trust stores {', '.join(s for s in statement.trust_stores if s.startswith(kind))}"
        )
    _check(outcome, enforcement, AUTHENTICITY, failure)

    # Trusted identity (part of authenticity).
    if statement.identities and "*" not in statement.trusted_identities:
        dn = _subject_dn(leaf)
        if dn is None or not any(_is_subset(i, dn) for i in statement.identities):
            failure = (
                f"trusted identity check failed: signing certificate subject "
                f"'{outcome.subject}' does not match any of the trusted identities "
                f"{list(statement.trusted_identities)} of trust policy statement "
                f"{statement.name!r}"
            )
            _check(outcome, enforcement, AUTHENTICITY, failure)

    # Expiry.
    if env.expiry is not None and at >= env.expiry:
        failure = f"expiry check failed: digital signature has expired on {env.expiry.isoformat()}"
        _check(outcome, enforcement, EXPIRY, failure)

    # Authentic timestamp.
    _check(outcome, enforcement, AUTHENTIC_TIMESTAMP, _timestamp_failure(env, at))

    # Revocation: OCSP/CRL need the network; not checked (see the module docstring).
    return outcome


def _timestamp_failure(env: _Envelope, at: datetime.datetime) -> str | None:
    if env.scheme == SCHEME_X509:
        if env.timestamp:
            return (
                "authentic timestamp check failed: RFC 3161 timestamp countersignatures are "
                "not supported by tidegate"
            )
        # Without a countersignature notation requires the chain to be valid now. The signing
        # time is untrusted, but notation's signer only signs inside the validity, so one
        # outside it marks a forged or misdated signature.
        moments: tuple[tuple[str, datetime.datetime], ...] = (
            ("verification time", at),
            ("signing time", env.signing_time),
        )
    else:
        moments = (("authentic signing time", env.signing_time),)
    for what, moment in moments:
        for cert in env.chain:
            if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
                return (
                    f"authentic timestamp check failed: {what} {moment.isoformat()} is not "
                    f"within the validity of certificate '{cert.subject.rfc4514_string()}' "
                    f"({cert.not_valid_before_utc.isoformat()} to "
                    f"{cert.not_valid_after_utc.isoformat()})"
                )
    return None


def _check_target(payload: bytes, digest: str, media_type: str, size: int) -> None:
    try:
        target = json.loads(payload)["targetArtifact"]
        claimed = (target["mediaType"], target["digest"], target["size"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise VerificationError(
            'integrity check failed: signature payload is not {"targetArtifact": descriptor}'
        ) from exc
    if claimed != (media_type, digest, size):
        raise VerificationError(
            f"content descriptor mismatch: the signature is for {claimed[1]} "
            f"({claimed[0]}, {claimed[2]} bytes), not {digest} ({media_type}, {size} bytes)"
        )


def verify_envelope(
    envelope: bytes,
    media_type: str,
    *,
    digest: str,
    media_type_of_target: str,
    size: int,
    policy: TrustPolicy | TrustPolicyStatement,
    certificates: Mapping[str, Sequence[x509.Certificate]],
    at: datetime.datetime | None = None,
    repository: str | None = None,
) -> list[str]:
    """Verify one signature envelope for the artifact `digest` (of `media_type_of_target`, `size`).

    `certificates` maps trust stores as the policy names them (`ca:acme`) to their certificates.
    With a whole `TrustPolicy`, `repository` (`host/repo`) selects the statement. Raises
    `VerificationError` naming the failed check; returns the failures the level only logs.
    """
    statement = policy
    if isinstance(policy, TrustPolicy):
        if repository is None:
            if len(policy.statements) != 1:
                raise VerificationError("a repository is needed to select the trust policy")
            statement = policy.statements[0]
        else:
            statement = policy.statement_for(repository)
    assert isinstance(statement, TrustPolicyStatement)
    if statement.level == "skip":
        return []
    outcome = _verify(
        envelope,
        media_type,
        digest=digest,
        media_type_of_target=media_type_of_target,
        size=size,
        statement=statement,
        certificates=certificates,
        at=at or datetime.datetime.now(datetime.UTC),
    )
    _check_target(outcome.payload, digest, media_type_of_target, size)
    return outcome.logged


# -- the registry side ----------------------------------------------------------------------


async def verify_notation(
    registry: Registry,
    ref: Reference,
    policy: TrustPolicy,
    certificates: Mapping[str, Sequence[x509.Certificate]],
    *,
    at: datetime.datetime | None = None,
) -> str:
    """Verify `ref` (with a digest) has a Notation signature the policy trusts; say which.

    Under `skip`, and under `audit` when authenticity only failed (what Flux reports as an
    ignored verification), the returned text starts with "not verified:".
    """
    if not ref.digest:
        raise VerificationError(f"notation verification of '{ref}' needs the artifact digest")
    repository = ref.name
    statement = policy.statement_for(repository)
    if statement.level == "skip":
        return (
            f"{NOT_VERIFIED} trust policy statement {statement.name!r} skips signature "
            f"verification for '{repository}'"
        )
    manifest = await registry.fetch_manifest(ref)
    size = len(manifest.data)
    try:
        target_type = manifest.media_type or json.loads(manifest.data).get("mediaType", "")
    except ValueError:
        target_type = manifest.media_type
    descriptors = await registry.referrers(ref.repository, ref.digest, NOTATION_ARTIFACT_TYPE)
    if not descriptors:
        raise VerificationError(f"no notation signature found for '{ref}'")
    failures: list[str] = []
    for descriptor in descriptors[:MAX_SIGNATURES]:
        sig_digest = str(descriptor.get("digest", ""))
        try:
            envelope, media_type = await _fetch_envelope(registry, ref, sig_digest)
            logged = verify_envelope(
                envelope,
                media_type,
                digest=ref.digest,
                media_type_of_target=target_type,
                size=size,
                policy=statement,
                certificates=certificates,
                at=at,
            )
        except (VerificationError, OCIError) as exc:
            failures.append(f"{sig_digest}: {exc}")
            continue
        subject = _parse_envelope(envelope, media_type).chain[0].subject.rfc4514_string()
        if any(f.startswith(("authenticity", "trusted identity")) for f in logged):
            return (
                f"{NOT_VERIFIED} notation signature {sig_digest} of '{ref}' by '{subject}' "
                f"failed authenticity, logged only under level {statement.level!r}"
            )
        return f"notation signature {sig_digest} of '{ref}' by '{subject}'"
    extra = len(descriptors) - MAX_SIGNATURES
    if extra > 0:
        failures.append(f"{extra} more signatures not evaluated (limit {MAX_SIGNATURES})")
    raise VerificationError(
        f"no notation signature of '{ref}' verified with trust policy statement "
        f"{statement.name!r}: " + "; ".join(failures)
    )


async def _fetch_envelope(registry: Registry, ref: Reference, digest: str) -> tuple[bytes, str]:
    manifest = await registry.fetch_manifest(ref.with_digest(digest))
    try:
        layers = json.loads(manifest.data).get("layers") or []
    except (ValueError, AttributeError) as exc:
        raise VerificationError("signature manifest is not a JSON object") from exc
    if len(layers) != 1:
        raise VerificationError(
            f"signature manifest requires exactly one signature envelope blob, got {len(layers)}"
        )
    layer = layers[0]
    media_type = layer.get("mediaType")
    if media_type not in ENVELOPE_MEDIA_TYPES:
        raise VerificationError(f"unsupported signature envelope media type {media_type!r}")
    if not isinstance(layer.get("size"), int) or layer["size"] > MAX_ENVELOPE_SIZE:
        raise VerificationError(f"signature envelope is larger than {MAX_ENVELOPE_SIZE} bytes")
    out = io.BytesIO()
    await registry.fetch_blob(
        ref.repository, str(layer.get("digest")), out, max_size=MAX_ENVELOPE_SIZE
    )
    return out.getvalue(), str(media_type)


def thumbprints(chain: Sequence[x509.Certificate]) -> str:
    """The `io.cncf.notary.x509chain.thumbprint#S256` annotation value notation writes."""
    return json.dumps(
        [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in chain],
        separators=(",", ":"),
    )
