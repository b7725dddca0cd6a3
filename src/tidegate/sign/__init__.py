"""Signing and verifying artifacts: cosign (keyed and keyless) and Notation.

`sign_artifact` writes a cosign signature with a key; `verify_cosign` checks cosign
signatures (classic `.sig` manifests and Sigstore bundles) against public keys or keyless
identities under a trusted root; `verify_notation` checks Notary Project signatures against a
trust policy and trust store. Every failed check raises `VerificationError` naming it.
"""

from ._cosign import CosignPolicy, Verified, sign_artifact, signature_tag, simple_signing_payload
from ._cosign import verify_artifact as verify_cosign
from ._errors import VerificationError
from ._identity import Identity
from ._keys import (
    KeyFileError,
    KeyPair,
    PrivateKey,
    PublicKey,
    generate_key_pair,
    load_private_key,
    load_public_keys,
)
from ._notation import NOT_VERIFIED, TrustPolicy, verify_notation
from ._notation import trust_material_from_secret as notation_trust_material

__all__ = [
    "NOT_VERIFIED",
    "CosignPolicy",
    "Identity",
    "KeyFileError",
    "KeyPair",
    "PrivateKey",
    "PublicKey",
    "TrustPolicy",
    "VerificationError",
    "Verified",
    "generate_key_pair",
    "load_private_key",
    "load_public_keys",
    "notation_trust_material",
    "sign_artifact",
    "signature_tag",
    "simple_signing_payload",
    "verify_cosign",
    "verify_notation",
]
