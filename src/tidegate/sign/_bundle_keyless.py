"""Keyless Sigstore bundles, verified with sigstore-python (imported only here: loading it
takes over a second, which keyed verification and the CLI's other verbs should not pay)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from cryptography import x509
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootModel

from ._bundle import (
    COSIGN_SIGN_PREDICATE_TYPE,
    _check_statement,
    _describe,
    _first_line,
    _no_dsse,
    _parse,
    _Predicates,
)
from ._errors import VerificationError
from ._identity import Identity
from ._keyless import match_identity
from ._trustroot import TrustedRoot as _TrustRootDocument


def verify_bundle_keyless(
    bundle_json: bytes,
    digest: str,
    trusted_root_json: bytes | None,
    identities: Sequence[Identity],
    *,
    predicate_types: _Predicates = (COSIGN_SIGN_PREDICATE_TYPE,),
) -> None:
    """Verify a keyless bundle for the manifest `digest`; VerificationError names what failed.

    `trusted_root_json` is a sigstore `trusted_root.json`; None means Sigstore's public-good
    root as embedded in sigstore-python (read offline: no TUF refresh). The certificate must
    name one of `identities` (issuer and subject, unanchored Go regexps).
    """
    if not identities:
        raise VerificationError(
            "sigstore bundle: no identities to match: keyless verification needs at least one "
            "issuer and subject expression"
        )
    document = _parse(bundle_json)
    if "dsseEnvelope" not in document:
        raise VerificationError(_no_dsse(document))
    root = _trusted_root(trusted_root_json)
    try:
        bundle = Bundle.from_json(bundle_json)
    except InvalidBundle as exc:
        raise VerificationError(f"sigstore bundle: malformed: {_first_line(exc)}") from None
    except Exception as exc:  # hostile input can trip anything in the parsers
        raise VerificationError(f"sigstore bundle: malformed: {_describe(exc)}") from None
    try:
        verifier = Verifier(trusted_root=root)
        payload_type, payload = verifier.verify_dsse(bundle, _IdentityPolicy(identities))
    except _IdentityMismatch as exc:
        raise VerificationError(f"sigstore bundle: {exc}") from None
    except SigstoreError as exc:
        raise VerificationError(f"sigstore bundle: {_explain(exc)}") from None
    except Exception as exc:
        raise VerificationError(f"sigstore bundle: invalid: {_describe(exc)}") from None
    _check_statement(payload_type, payload, digest, predicate_types)


class _IdentityMismatch(SigstoreVerificationError):
    """Raised by the identity policy (sigstore-python expects its own error type there)."""


class _IdentityPolicy:
    """sigstore-python policy: the certificate names any of the identities.

    As cosign's `--certificate-identity-regexp`/`--certificate-oidc-issuer-regexp` and Flux's
    `matchOIDCIdentity`: the issuer is Fulcio's issuer extension, the subject any SAN (email,
    URI, DNS, IP or Fulcio's otherName), matched with Go's unanchored `regexp.MatchString`.
    """

    def __init__(self, identities: Sequence[Identity]) -> None:
        self._identities = list(identities)

    def verify(self, cert: x509.Certificate) -> None:
        try:
            match_identity(cert, self._identities)
        except VerificationError as exc:
            raise _IdentityMismatch(f"certificate {exc}") from None


def _explain(exc: Exception) -> str:
    """sigstore-python's failure, said as the check that failed."""
    text = _first_line(exc)
    lower = text.lower()
    if isinstance(exc, CertValidationError):
        return f"certificate chain does not lead to a trusted root at signing time ({text})"
    if "sct" in lower:
        return f"certificate transparency: signed certificate timestamp invalid ({text})"
    if "expired at time of signing" in lower:
        return f"certificate was not valid at signing time ({text})"
    if "inclusion proof contains invalid root hash:" in lower:
        # sigstore-python's message carries the whole proof; the cause is what matters.
        return "transparency log inclusion proof invalid: the entry does not lead to its root hash"
    if "inclusion proof has wrong size" in lower:
        return f"transparency log inclusion proof invalid ({text})"
    if "set:" in lower or "inclusion promise" in lower:
        return f"transparency log inclusion promise (SET) invalid ({text})"
    if "checkpoint" in lower or "root hash signature" in lower:
        return f"transparency log checkpoint invalid ({text})"
    if "inclusion proof" in lower:
        return f"transparency log inclusion proof invalid ({text})"
    if "log entry" in lower or "transparency log" in lower:
        return f"transparency log entry does not match the bundle ({text})"
    if "dsse" in lower:
        return f"DSSE signature invalid ({text})"
    if "verified time" in lower:
        return (
            f"no verified signing time: the bundle has no inclusion promise or timestamp ({text})"
        )
    if "key usage" in lower or "extended usage" in lower:
        return f"certificate is not a code-signing certificate ({text})"
    return text


def _trusted_root(trusted_root_json: bytes | None) -> TrustedRoot:
    raw = trusted_root_json if trusted_root_json is not None else _public_good_root()
    try:
        return TrustedRoot(TrustedRootModel.from_json(raw))
    except Exception as exc:
        raise VerificationError(f"trusted root: malformed: {_describe(exc)}") from None


@cache
def _public_good_root() -> bytes:
    """Sigstore's public-good trusted root as shipped inside sigstore-python (no TUF refresh:
    sigstore-python's own offline mode would also write to, and prefer, a per-user cache)."""
    try:
        return _TrustRootDocument.default().data
    except (OSError, ModuleNotFoundError) as exc:
        raise VerificationError(
            f"trusted root: Sigstore's public-good root is not available: {exc}"
        ) from None
