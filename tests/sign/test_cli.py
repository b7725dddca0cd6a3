"""`tidegate generate key-pair`, `sign artifact` and `verify artifact` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.registry


def run(*args: str, cwd: Path, password: str | None = "pw") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    if password is not None:
        env["COSIGN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_generate_sign_verify(registry: str, tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.yaml").write_text("a: 1\n")
    url = f"oci://{registry}/cli/signed:v1"
    assert run("push", "artifact", url, "--path", "app", "--source", "s", "--revision", "r",
               "--insecure-registry", cwd=tmp_path).returncode == 0  # fmt: skip

    made = run("generate", "key-pair", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "cosign.key").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in (tmp_path / "cosign.key").read_bytes()
    again = run("generate", "key-pair", cwd=tmp_path)
    assert again.returncode == 2
    assert "cosign.key exists" in again.stderr
    other = run("generate", "key-pair", "--output-key-prefix", "other", cwd=tmp_path)
    assert other.returncode == 0, other.stderr

    unsigned = run("verify", "artifact", url, "--key", "cosign.pub", "--insecure-registry",
                   cwd=tmp_path)  # fmt: skip
    assert unsigned.returncode == 1
    assert "no cosign signature found" in unsigned.stderr

    wrong_password = run("sign", "artifact", url, "--key", "cosign.key", "--insecure-registry",
                         cwd=tmp_path, password="nope")  # fmt: skip
    assert wrong_password.returncode == 2
    assert "wrong password" in wrong_password.stderr
    assert "nope" not in wrong_password.stderr

    signed = run("sign", "artifact", url, "--key", "cosign.key", "-a", "ci=42",
                 "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    digest = signed.stdout.strip().rsplit("@", 1)[1]

    ok = run("verify", "artifact", url, "--key", "other.pub", "--key", "cosign.pub",
             "--insecure-registry", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert f"Verified {registry}/cli/signed@{digest}: signed with key" in ok.stdout

    wrong = run("verify", "artifact", url, "--key", "other.pub", "--insecure-registry",
                cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 1
    assert "signature does not verify with the given public key" in wrong.stderr

    # Not a verification failure: the registry is not there.
    gone = run("verify", "artifact", "oci://127.0.0.1:9/cli/signed:v1", "--key", "cosign.pub",
               "--insecure-registry", "--timeout", "2", cwd=tmp_path)  # fmt: skip
    assert gone.returncode == 2
    assert "127.0.0.1:9" in gone.stderr


def test_verify_needs_a_key_or_identities(tmp_path: Path) -> None:
    result = run("verify", "artifact", "oci://127.0.0.1:9/x/y:v1", cwd=tmp_path)
    assert result.returncode == 2
    assert "give --key, or both --certificate-identity-regexp" in result.stderr


async def test_keyless_verify_with_a_trusted_root_file(registry: str, tmp_path: Path) -> None:
    from tidegate import oci
    from tidegate.oci import Reference, Registry
    from tidegate.testing._sigstore import (
        TestCA,
        TestLog,
        push_keyless_signature,
        trusted_root_json,
    )

    workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
    issuer = "https://token.actions.githubusercontent.com"
    ca, log = TestCA(), TestLog()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.yaml").write_text("keyless: 1\n")
    ref = Reference.parse(f"{registry}/cli/keyless:v1")
    async with Registry(registry, insecure=True, docker_config=False) as client:
        digest = (await oci.push(client, ref, tmp_path / "app")).digest
        await push_keyless_signature(client, ref, digest, ca.issue(workflow, issuer), log)
    (tmp_path / "trusted_root.json").write_bytes(trusted_root_json(ca, log))
    url = f"oci://{ref}"
    common = ["--trusted-root", "trusted_root.json", "--insecure-registry",
              "--certificate-oidc-issuer-regexp", issuer.replace(".", r"\.")]  # fmt: skip
    ok = run("verify", "artifact", url, *common, "--certificate-identity-regexp",
             "^https://github.com/acme/", cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert f"signed keyless by '{workflow}'" in ok.stdout
    wrong = run("verify", "artifact", url, *common, "--certificate-identity-regexp",
                "^https://github.com/evil/", cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 1
    assert "identity mismatch" in wrong.stderr
    # Without --trusted-root: Sigstore's public-good root, which does not know the test CA.
    public = run("verify", "artifact", url, "--insecure-registry",
                 "--certificate-oidc-issuer-regexp", ".*", "--certificate-identity-regexp", ".*",
                 cwd=tmp_path)  # fmt: skip
    assert public.returncode == 1
    assert "trusted root" in public.stderr
