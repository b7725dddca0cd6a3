"""`tidegate generate key-pair`, `sign artifact` and `verify artifact`, with cosign's flags."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from tidegate.oci import OCIError, Reference, Registry

from ._artifact import _reference, _registry_options, _with_registry

# What cosign reads the key's password from before it asks.
PASSWORD_ENV = "COSIGN_PASSWORD"


class _Failed(click.ClickException):
    """Anything but a failed verification (bad flags, registry errors): exit code 2."""

    exit_code = 2


def _password(confirm: bool) -> bytes:
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if not sys.stdin.isatty():
        # cosign reads it from a pipe the same way.
        return sys.stdin.readline().rstrip("\n").encode()
    value = click.prompt(
        "Enter password for private key", hide_input=True,
        confirmation_prompt="Enter password for private key again" if confirm else False,
        default="", show_default=False,
    )  # fmt: skip
    return str(value).encode()


# -- generate key-pair ---------------------------------------------------------------------


@click.group("generate")
def generate_group() -> None:
    """Generate key pairs."""


@generate_group.command("key-pair")
@click.option(
    "--output-key-prefix", default="cosign", show_default=True,
    help="Name of the files written: PREFIX.key and PREFIX.pub, in the current folder.",
)  # fmt: skip
def generate_key_pair(output_key_prefix: str) -> None:
    """Write a cosign-compatible ECDSA P-256 key pair: an encrypted private key and its
    public key. The password comes from $COSIGN_PASSWORD, else a prompt."""
    from tidegate.sign import generate_key_pair as generate

    private, public = Path(f"{output_key_prefix}.key"), Path(f"{output_key_prefix}.pub")
    for existing in (private, public):
        if existing.exists():
            raise _Failed(f"{existing} exists; remove it or choose another --output-key-prefix")
    pair = generate(_password(confirm=True))
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pair.private_pem)
    public.write_bytes(pair.public_pem)
    click.echo(f"Private key written to {private}", err=True)
    click.echo(f"Public key written to {public}", err=True)


# -- sign ----------------------------------------------------------------------------------


@click.group("sign")
def sign_group() -> None:
    """Sign artifacts."""


@sign_group.command("artifact")
@click.argument("url")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Private key: cosign's encrypted format or PEM (PKCS #8, EC, RSA).",
)
@click.option(
    "--annotations",
    "-a",
    multiple=True,
    help="Extra KEY=VALUE claims in the signed payload (repeatable).",
)
@_registry_options
def sign_artifact(url: str, key_path: str, annotations: tuple[str, ...], **registry: Any) -> None:
    """Sign the artifact at URL with a key, as `cosign sign --key` does: a simple signing
    payload naming the manifest digest, stored under the `sha256-<hex>.sig` tag beside
    any signatures already there."""  # fmt: skip
    from tidegate.sign import KeyFileError, load_private_key
    from tidegate.sign import sign_artifact as sign

    ref = _reference(url)
    claims: dict[str, str] = {}
    for item in annotations:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"'{item}' is not KEY=VALUE", param_hint="--annotations")
        claims[name] = value
    pem = Path(key_path).read_bytes()
    password = _password(confirm=False) if b"ENCRYPTED" in pem else None
    try:
        key = load_private_key(pem, password)
    except KeyFileError as exc:
        raise _Failed(f"cannot load {key_path}: {exc}") from None
    try:
        digest, signature = _with_registry(lambda r: sign(r, ref, key, claims), ref, **registry)
    except OCIError as exc:
        raise _Failed(f"failed to sign '{url}': {exc}") from exc
    click.echo(f"{ref.name}@{digest}")
    click.echo(f"signature pushed to {ref.name}:{digest.replace(':', '-')}.sig ({signature})",
               err=True)  # fmt: skip


# -- verify --------------------------------------------------------------------------------


@click.group("verify")
def verify_group() -> None:
    """Verify the signatures of artifacts."""


@verify_group.command("artifact")
@click.argument("url")
@click.option(
    "--provider",
    type=click.Choice(["cosign", "notation"]),
    default="cosign",
    show_default=True,
    help="Signature format, as OCIRepository.spec.verify.provider.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="cosign public key (PEM); repeatable, any one may match.",
)
@click.option(
    "--certificate-identity-regexp",
    default=None,
    help="Keyless: Go regular expression the certificate's subject (SAN) must match.",
)
@click.option(
    "--certificate-oidc-issuer-regexp",
    default=None,
    help="Keyless: Go regular expression the certificate's OIDC issuer must match.",
)
@click.option(
    "--trusted-root",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Keyless: sigstore trusted_root.json (default: Sigstore's public-good "
    "root, from the copy installed with tidegate; no network).",
)
@click.option(
    "--trust-policy",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Notation: trustpolicy.json.",
)
@click.option(
    "--trust-store-cert",
    "trust_certs",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Notation: CA certificate (PEM) of the trust stores (repeatable).",
)
@_registry_options
def verify_artifact(url: str, provider: str, keys: tuple[str, ...],
                    certificate_identity_regexp: str | None,
                    certificate_oidc_issuer_regexp: str | None, trusted_root: str | None,
                    trust_policy: str | None, trust_certs: tuple[str, ...],
                    **registry: Any) -> None:  # fmt: skip
    """Verify the signatures of the artifact at URL.

    cosign with public keys (--key), cosign keyless (--certificate-identity-regexp and
    --certificate-oidc-issuer-regexp, checked against the trusted root and the transparency
    log proof offline), or Notation (--provider notation with --trust-policy and
    --trust-store-cert). Exit code 0 when a signature verifies, 1 when none does (the
    message says which check failed), 2 on other errors.
    """
    from tidegate.sign import VerificationError

    ref = _reference(url)
    try:
        if provider == "notation":
            check = _notation_check(ref, trust_policy, trust_certs)
        else:
            check = _cosign_check(ref, keys, certificate_identity_regexp,
                                  certificate_oidc_issuer_regexp, trusted_root)  # fmt: skip
        described = _with_registry(check, ref, **registry)
    except VerificationError as exc:
        click.echo(f"Error: verification failed: {exc}", err=True)
        sys.exit(1)
    except OCIError as exc:
        raise _Failed(f"failed to verify '{url}': {exc}") from exc
    click.echo(f"Verified {described}")


def _cosign_check(
    ref: Reference,
    key_files: tuple[str, ...],
    identity: str | None,
    issuer: str | None,
    trusted_root: str | None,
) -> Callable[[Registry], Awaitable[str]]:
    from tidegate.sign import CosignPolicy, Identity, KeyFileError, load_public_keys
    from tidegate.sign import verify_cosign as verify

    if key_files and (identity or issuer):
        raise _Failed("give either --key or the keyless --certificate-* flags, not both")
    keys = []
    for path in key_files:
        try:
            keys.extend(load_public_keys(Path(path).read_bytes()))
        except KeyFileError as exc:
            raise _Failed(f"cannot load {path}: {exc}") from None
    identities = []
    if not keys:
        if not identity or not issuer:
            raise _Failed(
                "give --key, or both --certificate-identity-regexp and "
                "--certificate-oidc-issuer-regexp"
            )
        identities.append(Identity(issuer=issuer, subject=identity))
    root = Path(trusted_root).read_bytes() if trusted_root else None
    policy = CosignPolicy(keys=keys, identities=identities, trusted_root=root)

    async def check(registry: Registry) -> str:
        verified = await verify(registry, ref, policy)
        return f"{ref.name}@{verified.digest}: {verified.description}"

    return check


def _notation_check(
    ref: Reference, trust_policy: str | None, cert_files: tuple[str, ...]
) -> Callable[[Registry], Awaitable[str]]:
    from tidegate.sign import notation_trust_material, verify_notation

    if not trust_policy or not cert_files:
        raise _Failed("--provider notation needs --trust-policy and --trust-store-cert")
    files = {"trustpolicy.json": Path(trust_policy).read_bytes()}
    files.update({Path(p).name: Path(p).read_bytes() for p in cert_files})
    policy, certificates = notation_trust_material(files)

    async def check(registry: Registry) -> str:
        from tidegate.sign._cosign import resolve

        digest = await resolve(registry, ref)
        described = await verify_notation(registry, ref.with_digest(digest), policy, certificates)
        return f"{ref.name}@{digest}: {described}"

    return check
