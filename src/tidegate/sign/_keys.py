"""cosign key pairs: generation, cosign's encrypted private key format, and public keys.

cosign stores a private key as PEM of type `ENCRYPTED SIGSTORE PRIVATE KEY` (older
releases: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON from go-securesystemslib's
`encrypted` package: the PKCS #8 DER key sealed with NaCl secretbox under a key derived from
the password with scrypt. Only the three scrypt parameter sets that package writes are
accepted on reading, as there: a file that asks for more would let its author make reading
it arbitrarily slow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ._errors import VerificationError

SIGSTORE_PRIVATE_KEY = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PRIVATE_KEY = "ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC_KEY = "PUBLIC KEY"

# (N, r, p): go-securesystemslib's Legacy, Standard (what cosign writes) and OWASP levels.
_SCRYPT_PARAMS = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
_WRITE_PARAMS = (65536, 8, 1)
_SALT_SIZE = 32

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class KeyFileError(ValueError):
    """A key file that cannot be read: wrong format, wrong password, unsupported algorithm."""


@dataclass(frozen=True)
class KeyPair:
    """A key pair as cosign writes it: the encrypted private key and the public key, PEM."""

    private_pem: bytes
    public_pem: bytes


def generate_key_pair(password: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair in cosign's format (`cosign generate-key-pair`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(encrypt_private_key(key, password), public_pem(key.public_key()))


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encrypt_private_key(key: PrivateKey, password: bytes) -> bytes:
    """`key` as an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM block."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    n, r, p = _WRITE_PARAMS
    salt = os.urandom(_SALT_SIZE)
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = box.encrypt(der, nonce).ciphertext
    # Field order and base64 byte slices as Go's encoding/json writes the struct.
    body = json.dumps(
        {
            "kdf": {
                "name": "scrypt",
                "params": {"N": n, "r": r, "p": p},
                "salt": _b64(salt),
            },
            "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
            "ciphertext": _b64(sealed),
        },
        separators=(",", ":"),
    ).encode()
    return _pem(SIGSTORE_PRIVATE_KEY, body)


def load_private_key(pem: bytes, password: bytes | None) -> PrivateKey:
    """A private key from cosign's encrypted format, or from plain PEM (PKCS #8, SEC 1, PKCS #1).

    Raises `KeyFileError` naming what is wrong; the password never appears in messages.
    """
    match = _PEM_BLOCK.search(pem)
    if match is None:
        raise KeyFileError("not a PEM private key")
    kind = match.group(1).decode()
    if kind in (SIGSTORE_PRIVATE_KEY, COSIGN_PRIVATE_KEY):
        der = _decrypt(_unbase64_pem(match.group(2)), password or b"")
        try:
            key = serialization.load_der_private_key(der, password=None)
        except ValueError as exc:
            raise KeyFileError(f"decrypted key is not a PKCS #8 private key: {exc}") from None
    elif kind in ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(match.group(0), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot read {kind}: {exc}") from None
    else:
        raise KeyFileError(f"unsupported PEM block '{kind}' (expected a cosign or PKCS #8 key)")
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                            ed25519.Ed25519PrivateKey)):  # fmt: skip
        raise KeyFileError(f"unsupported private key type {type(key).__name__}")
    return key


def load_public_keys(pem: bytes) -> list[PublicKey]:
    """Every public key in a PEM file (`PUBLIC KEY` blocks, or certificates' keys)."""
    keys: list[PublicKey] = []
    for match in _PEM_BLOCK.finditer(pem):
        kind = match.group(1).decode()
        try:
            if kind == PUBLIC_KEY:
                key = serialization.load_pem_public_key(match.group(0))
            elif kind == "CERTIFICATE":
                key = x509.load_pem_x509_certificate(match.group(0)).public_key()
            else:
                continue
        except ValueError as exc:
            raise KeyFileError(f"cannot read {kind}: {exc}") from None
        if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey,
                                ed25519.Ed25519PublicKey)):  # fmt: skip
            raise KeyFileError(f"unsupported public key type {type(key).__name__}")
        keys.append(key)
    if not keys:
        raise KeyFileError("no PUBLIC KEY block found")
    return keys


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign as cosign does: ECDSA with the curve's hash (DER), RSA PKCS #1 v1.5 SHA-256,
    or pure Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_curve_hash(key.curve)))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def verify_with_any(keys: Sequence[PublicKey], signature: bytes, data: bytes) -> PublicKey:
    """The first of `keys` whose signature over `data` `signature` is; else VerificationError."""
    for key in keys:
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(_curve_hash(key.curve)))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(signature, data)
        except (InvalidSignature, ValueError):
            continue
        return key
    raise VerificationError(
        "signature does not verify with "
        + ("the given public key" if len(keys) == 1 else f"any of the {len(keys)} public keys")
    )


def key_id(key: PublicKey) -> str:
    """A short fingerprint for messages: sha256 of the DER public key, first 16 hex digits."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def _curve_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    if isinstance(curve, ec.SECP384R1):
        return hashes.SHA384()
    if isinstance(curve, ec.SECP521R1):
        return hashes.SHA512()
    return hashes.SHA256()


def _decrypt(body: bytes, password: bytes) -> bytes:
    try:
        data = json.loads(body)
        kdf, cipher = data["kdf"], data["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(data["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KeyFileError(f"malformed encrypted private key: {exc}") from None
    if kdf.get("name") != "scrypt":
        raise KeyFileError(f"encrypted private key: unknown kdf {kdf.get('name')!r}")
    if cipher.get("name") != "nacl/secretbox":
        raise KeyFileError(f"encrypted private key: unknown cipher {cipher.get('name')!r}")
    if (n, r, p) not in _SCRYPT_PARAMS:
        raise KeyFileError("encrypted private key: unsupported scrypt parameters")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise KeyFileError("encrypted private key: incorrect nonce size")
    box = nacl.secret.SecretBox(_scrypt(password, salt, n, r, p))
    try:
        return box.decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise KeyFileError("cannot decrypt the private key: wrong password?") from None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 << 20)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(kind: str, body: bytes) -> bytes:
    encoded = base64.b64encode(body).decode()
    lines = "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


def _unbase64_pem(body: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (ValueError, binascii.Error):
        raise KeyFileError("PEM body is not base64") from None
