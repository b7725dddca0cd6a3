"""Keyless identities: which OIDC issuer and subject a signing certificate must name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """An allowed signer: Go regular expressions for the OIDC issuer and the subject (SAN).

    As in Flux's `matchOIDCIdentity` and cosign's `--certificate-*-regexp` flags the
    expressions are unanchored (Go's `regexp.MatchString`): anchor them with `^…$`.
    """

    issuer: str
    subject: str


IdentityList = Sequence[Identity]
