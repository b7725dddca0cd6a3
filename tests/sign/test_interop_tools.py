"""Signatures move both ways between tidegate and the real signing tools.

cosign v3 (the version Flux's source-controller verifies with) and `tidegate-notation-sign`
(`notation sign` on notation-go, whose CLI module the Go module proxy refuses) come from PATH or
are built once from the Go module proxy (`make test` prepares them with `tidegate dev prepare
--cosign --notation`); without Go or the proxy, the tests are skipped and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from tidegate.testing import MissingPrerequisite
from tidegate.testing._binaries import (
    COSIGN_VERSION,
    NOTATION_GO_VERSION,
    cosign_binary,
    notation_signer_binary,
)
from tidegate.testing._notation import make_ca, make_signing_cert

# The first run may build cosign from source in a fixture (minutes on two cores); `make test`
# builds it beforehand.
pytestmark = [pytest.mark.registry, pytest.mark.timeout(1800)]
APP = Path(__file__).parent.parent / "oci" / "testdata" / "app"
PASSWORD = "interop-password"
# Every request the tools make beyond the local registry goes to a closed port and fails at
# once, so a tool that would reach Sigstore's public services shows up as a failure.
OFFLINE = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
}
# `cosign sign --key` without Sigstore's services: no transparency log upload, and the service
# URLs not fetched from Sigstore's TUF repository (cosign 3 refuses --tlog-upload=false with it).
COSIGN_OFFLINE_SIGN = ["--tlog-upload=false", "--use-signing-config=false", "-y"]


@pytest.fixture(scope="session")
def cosign() -> Path:
    try:
        return cosign_binary(print)
    except MissingPrerequisite as exc:
        pytest.skip(f"cosign v{COSIGN_VERSION} could not be found or built: {exc}")


@pytest.fixture(scope="session")
def notation_signer() -> Path:
    try:
        return notation_signer_binary(print)
    except MissingPrerequisite as exc:
        pytest.skip(f"the notation-go v{NOTATION_GO_VERSION} signer could not be built: {exc}")


def tool_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "COSIGN_PASSWORD": PASSWORD, **OFFLINE}


def run(
    program: Path | str, *args: str, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**tool_env(cwd), **(extra_env or {})},
    )


def tidegate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**os.environ, "COSIGN_PASSWORD": PASSWORD, "DOCKER_CONFIG": str(cwd), **OFFLINE},
    )


def push(registry: str, repository: str, cwd: Path) -> str:
    """Push the test app with tidegate; `HOST/REPO@sha256:…`."""
    pushed = tidegate("push", "artifact", f"oci://{registry}/{repository}:v1", "-f", str(APP),
                      "--source", "https://git.example/app", "--revision", "main@sha1:0123",
                      "--insecure-registry", cwd=cwd)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    return f"{registry}/{repository}@{pushed.stdout.strip()}"


def verify_with_keys(ref: str, *keys: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    flags = [arg for key in keys for arg in ("--key", key)]
    return tidegate("verify", "artifact", f"oci://{ref}", *flags, "--insecure-registry",
                    cwd=cwd)  # fmt: skip


# cosign signs, tidegate verifies


@pytest.mark.parametrize(
    "bundle_format",
    [
        pytest.param(["--new-bundle-format=false"], id="sig-tag"),
        # cosign 3's default: a sigstore bundle (DSSE) stored as an OCI 1.1 referrer, through
        # the referrers tag schema on registries without the referrers API.
        pytest.param([], id="sigstore-bundle"),
    ],
)
def test_cosign_sign_tidegate_verify(
    cosign: Path, registry: str, tmp_path: Path, bundle_format: list[str]
) -> None:
    ref = push(registry, f"interop/cosign-signs-{len(bundle_format)}", tmp_path)
    generated = run(cosign, "generate-key-pair", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    other = tidegate("generate", "key-pair", "--output-key-prefix", "other", cwd=tmp_path)
    assert other.returncode == 0, other.stderr

    signed = run(cosign, "sign", "--key", "cosign.key", *COSIGN_OFFLINE_SIGN, *bundle_format,
                 ref, cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr

    verified = verify_with_keys(ref, "cosign.pub", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    # Any of several keys may match.
    either = verify_with_keys(ref, "other.pub", "cosign.pub", cwd=tmp_path)
    assert either.returncode == 0, either.stderr
    by_tag = verify_with_keys(ref.split("@")[0] + ":v1", "cosign.pub", cwd=tmp_path)
    assert by_tag.returncode == 0, by_tag.stderr

    wrong = verify_with_keys(ref, "other.pub", cwd=tmp_path)
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stderr.strip()


def test_cosign_signature_does_not_verify_another_artifact(
    cosign: Path, registry: str, tmp_path: Path
) -> None:
    signed_ref = push(registry, "interop/cosign-copied", tmp_path)
    assert run(cosign, "generate-key-pair", cwd=tmp_path).returncode == 0
    signed = run(cosign, "sign", "--key", "cosign.key", *COSIGN_OFFLINE_SIGN,
                 "--new-bundle-format=false", signed_ref, cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    # Another artifact in the same repository, with cosign's valid signature copied to its
    # `.sig` tag: the payload names the first artifact's digest.
    repo, digest = signed_ref.split("@")
    other = tidegate("push", "artifact", f"oci://{repo}:v2", "-f", str(APP / "base"),
                     "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0, other.stderr
    other_digest = other.stdout.strip()
    copied = tidegate("tag", "artifact", f"oci://{repo}:{digest.replace(':', '-')}.sig",
                      "--tag", f"{other_digest.replace(':', '-')}.sig", "--insecure-registry",
                      cwd=tmp_path)  # fmt: skip
    assert copied.returncode == 0, copied.stderr

    refused = verify_with_keys(f"{repo}@{other_digest}", "cosign.pub", cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    # cosign agrees.
    theirs = run(cosign, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog=true",
                 f"{repo}@{other_digest}", cwd=tmp_path)  # fmt: skip
    assert theirs.returncode != 0


# tidegate signs, cosign verifies


def cosign_verify(
    cosign: Path, ref: str, key: str, cwd: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run(cosign, "verify", "--key", key, "--insecure-ignore-tlog=true",
               "--allow-insecure-registry", "--allow-http-registry", *extra, ref,
               cwd=cwd)  # fmt: skip


def test_tidegate_sign_cosign_verify(cosign: Path, registry: str, tmp_path: Path) -> None:
    ref = push(registry, "interop/tidegate-signs", tmp_path)
    generated = tidegate("generate", "key-pair", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "cosign.key").is_file()
    assert (tmp_path / "cosign.pub").is_file()
    assert run(cosign, "generate-key-pair", "--output-key-prefix", "other",
               cwd=tmp_path).returncode == 0  # fmt: skip

    signed = tidegate("sign", "artifact", f"oci://{ref}", "--key", "cosign.key",
                      "-a", "team=platform", "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr

    verified = cosign_verify(cosign, ref, "cosign.pub", tmp_path)
    assert verified.returncode == 0, verified.stderr
    claims = json.loads(verified.stdout)
    assert [c["critical"]["image"]["docker-manifest-digest"] for c in claims] == [ref.split("@")[1]]
    annotated = cosign_verify(cosign, ref, "cosign.pub", tmp_path, "-a", "team=platform")
    assert annotated.returncode == 0, annotated.stderr
    other_annotation = cosign_verify(cosign, ref, "cosign.pub", tmp_path, "-a", "team=apps")
    assert other_annotation.returncode != 0

    wrong = cosign_verify(cosign, ref, "other.pub", tmp_path)
    assert wrong.returncode != 0, wrong.stdout

    # A second signature is appended: cosign finds each key's.
    again = tidegate("sign", "artifact", f"oci://{ref}", "--key", "other.key",
                     "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    for key in ("cosign.pub", "other.pub"):
        both = cosign_verify(cosign, ref, key, tmp_path)
        assert both.returncode == 0, (key, both.stderr)


def test_keys_interchange(cosign: Path, registry: str, tmp_path: Path) -> None:
    """Each tool signs with the other's encrypted private key; the other tool verifies."""
    assert tidegate("generate", "key-pair", "--output-key-prefix", "ours",
                    cwd=tmp_path).returncode == 0  # fmt: skip
    assert run(cosign, "generate-key-pair", "--output-key-prefix", "theirs",
               cwd=tmp_path).returncode == 0  # fmt: skip

    by_cosign = push(registry, "interop/keys-cosign", tmp_path)
    signed = run(cosign, "sign", "--key", "ours.key", *COSIGN_OFFLINE_SIGN,
                 "--new-bundle-format=false", by_cosign, cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    verified = verify_with_keys(by_cosign, "ours.pub", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr

    by_tidegate = push(registry, "interop/keys-tidegate", tmp_path)
    ours = tidegate("sign", "artifact", f"oci://{by_tidegate}", "--key", "theirs.key",
                    "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    theirs = cosign_verify(cosign, by_tidegate, "theirs.pub", tmp_path)
    assert theirs.returncode == 0, theirs.stderr


# notation signs, tidegate verifies


def write_pki(folder: Path, name: str) -> None:
    """`<name>-ca.crt` and a code-signing leaf it issued (`<name>.key`, `<name>-chain.pem`:
    leaf then CA), meeting the Notary Project's certificate requirements (see
    `tidegate.testing._notation.make_ca` and `make_signing_cert`)."""
    ca, ca_key = make_ca(f"{name} test CA")
    leaf, leaf_key = make_signing_cert(
        ca, ca_key, {"C": "US", "ST": "WA", "O": "tidegate.test", "CN": f"{name} signer"}
    )
    (folder / f"{name}-ca.crt").write_bytes(ca.public_bytes(Encoding.PEM))
    (folder / f"{name}-chain.pem").write_bytes(
        leaf.public_bytes(Encoding.PEM) + ca.public_bytes(Encoding.PEM)
    )
    (folder / f"{name}.key").write_bytes(
        leaf_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )


TRUST_POLICY = {
    "version": "1.0",
    "trustPolicies": [
        {
            "name": "interop",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:interop"],
            "trustedIdentities": ["*"],
        }
    ],
}


def notation_sign(
    signer: Path, ref: str, name: str, envelope: str, cwd: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run(signer, "--key", f"{name}.key", "--cert", f"{name}-chain.pem", "--envelope",
               envelope, "--insecure-registry", *extra, ref, cwd=cwd)  # fmt: skip


def notation_verify(ref: str, ca: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return tidegate("verify", "artifact", f"oci://{ref}", "--provider", "notation",
                    "--trust-policy", "trustpolicy.json", "--trust-store-cert", ca,
                    "--insecure-registry", cwd=cwd)  # fmt: skip


@pytest.mark.parametrize("envelope", ["jws", "cose"])
def test_notation_sign_tidegate_verify(
    notation_signer: Path, registry: str, tmp_path: Path, envelope: str
) -> None:
    write_pki(tmp_path, "trusted")
    write_pki(tmp_path, "stranger")
    (tmp_path / "trustpolicy.json").write_text(json.dumps(TRUST_POLICY))

    ref = push(registry, f"interop/notation-{envelope}", tmp_path)
    signed = notation_sign(notation_signer, ref, "trusted", envelope, tmp_path, "--expiry", "1h")
    assert signed.returncode == 0, signed.stderr
    assert f"Successfully signed {ref}" in signed.stdout

    verified = notation_verify(ref, "trusted-ca.crt", tmp_path)
    assert verified.returncode == 0, verified.stderr
    # The same signature, checked against a trust store without its CA.
    untrusted_store = notation_verify(ref, "stranger-ca.crt", tmp_path)
    assert untrusted_store.returncode == 1, untrusted_store.stderr

    # A signature by a certificate another CA issued.
    other = push(registry, f"interop/notation-{envelope}-stranger", tmp_path)
    by_stranger = notation_sign(notation_signer, other, "stranger", envelope, tmp_path)
    assert by_stranger.returncode == 0, by_stranger.stderr
    refused = notation_verify(other, "trusted-ca.crt", tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.strip()


def test_notation_referrers_api_mode(notation_signer: Path, registry: str, tmp_path: Path) -> None:
    """`notation sign --force-referrers-tag=false`: the referrers API where the registry has
    it, else the tag schema; tidegate finds the signature either way."""
    write_pki(tmp_path, "trusted")
    (tmp_path / "trustpolicy.json").write_text(json.dumps(TRUST_POLICY))
    ref = push(registry, "interop/notation-referrers", tmp_path)
    signed = notation_sign(notation_signer, ref, "trusted", "jws", tmp_path,
                           "--force-referrers-tag=false")  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    verified = notation_verify(ref, "trusted-ca.crt", tmp_path)
    assert verified.returncode == 0, verified.stderr
