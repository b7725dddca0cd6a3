"""`tidegate build|push|pull|tag|list|diff artifact(s)` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.registry
APP = Path(__file__).parent.parent / "oci" / "testdata" / "app"


def tidegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args], capture_output=True, text=True, timeout=120
    )


def test_push_pull_tag_list(registry: str, tmp_path: Path) -> None:
    url = f"oci://{registry}/cli/app:v1.0.0"
    pushed = tidegate("push", "artifact", url, "-f", str(APP), "--source", "https://git.example/app",
                      "--revision", "main@sha1:0123", "-a", "team=platform",
                      "--insecure-registry")  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.strip()
    assert digest.startswith("sha256:")
    assert len(digest) == 71
    assert f"artifact pushed to {url}@{digest}" in pushed.stderr

    as_json = tidegate("push", "artifact", f"oci://{registry}/cli/app:v1.1.0", "-f", str(APP),
                       "--insecure-registry", "-o", "json")  # fmt: skip
    result = json.loads(as_json.stdout)
    assert set(result) == {"repository", "tag", "digest", "url"}
    assert (result["repository"], result["tag"]) == (f"{registry}/cli/app", "v1.1.0")

    out = tmp_path / "out"
    pulled = tidegate("pull", "artifact", f"oci://{registry}/cli/app@{digest}", "-o", str(out),
                      "--insecure-registry")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert "revision main@sha1:0123" in pulled.stderr
    assert (out / "base" / "deployment.yaml").read_bytes() == (
        APP / "base" / "deployment.yaml"
    ).read_bytes()

    tagged = tidegate("tag", "artifact", url, "--tag", "latest,stable", "--insecure-registry")
    assert tagged.returncode == 0, tagged.stderr
    assert tagged.stdout.splitlines() == [
        f"{registry}/cli/app:latest@{digest}",
        f"{registry}/cli/app:stable@{digest}",
    ]

    listed = tidegate("list", "artifacts", f"oci://{registry}/cli/app", "--filter-semver",
                      ">=1.0.0", "-o", "json", "--insecure-registry")  # fmt: skip
    rows = json.loads(listed.stdout)
    assert [r["tag"] for r in rows] == ["v1.1.0", "v1.0.0"]
    assert rows[1] | {"created": ""} == {
        "tag": "v1.0.0", "digest": digest, "source": "https://git.example/app",
        "revision": "main@sha1:0123", "created": "",
    }  # fmt: skip
    table = tidegate("list", "artifacts", f"oci://{registry}/cli/app", "--filter-regex",
                     "^(latest|stable)$", "--insecure-registry")  # fmt: skip
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ARTIFACT", "DIGEST", "SOURCE", "REVISION", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == [
        f"{registry}/cli/app:latest",
        f"{registry}/cli/app:stable",
    ]
    bad = tidegate("list", "artifacts", f"oci://{registry}/cli/app", "--filter-semver", ">=foo",
                   "--insecure-registry")  # fmt: skip
    assert bad.returncode == 2
    assert "--filter-semver" in bad.stderr


def test_diff_exit_codes(registry: str, tmp_path: Path) -> None:
    url = f"oci://{registry}/cli/diff:v1"
    assert tidegate("push", "artifact", url, "-f", str(APP), "--insecure-registry").returncode == 0
    same = tidegate("diff", "artifact", url, "--path", str(APP), "--insecure-registry")
    assert same.returncode == 0, same.stderr

    changed = tmp_path / "changed"
    shutil.copytree(APP, changed)
    (changed / "KEEP.md").write_text("edited\n")
    (changed / "new.yaml").write_text("a: 1\n")
    different = tidegate("diff", "artifact", url, "--path", str(changed), "--insecure-registry")
    assert different.returncode == 1
    assert different.stdout.splitlines() == ["+ new.yaml", "~ KEEP.md"]

    missing = tidegate("diff", "artifact", f"oci://{registry}/cli/none:v1", "--path", str(APP),
                       "--insecure-registry")  # fmt: skip
    assert missing.returncode == 2
    assert "MANIFEST_UNKNOWN" in missing.stderr or "NAME_UNKNOWN" in missing.stderr


def test_build_artifact_then_push_the_tarball(registry: str, tmp_path: Path) -> None:
    tarball = tmp_path / "app.tgz"
    built = tidegate("build", "artifact", "-p", str(APP), "-o", str(tarball))
    assert built.returncode == 0, built.stderr
    with tarfile.open(tarball) as tar:
        assert "base/deployment.yaml" in tar.getnames()
        assert "logo.png" not in tar.getnames()
    again = tmp_path / "again.tgz"
    tidegate("build", "artifact", "-p", str(APP), "-o", str(again))
    assert tarball.read_bytes() == again.read_bytes()

    first = tidegate("push", "artifact", f"oci://{registry}/cli/tgz:a", "-f", str(tarball),
                     "--reproducible", "--insecure-registry")  # fmt: skip
    second = tidegate("push", "artifact", f"oci://{registry}/cli/tgz:b", "-f", str(APP),
                      "--reproducible", "--insecure-registry")  # fmt: skip
    assert first.stdout == second.stdout  # the folder and its tarball: the same artifact


def test_errors_name_the_reference(registry: str, tmp_path: Path) -> None:
    no_scheme = tidegate("pull", "artifact", f"{registry}/cli/app:v1", "-o", str(tmp_path))
    assert no_scheme.returncode == 2
    assert "must start with oci://" in no_scheme.stderr
    unknown = tidegate("pull", "artifact", f"oci://{registry}/cli/nothing:v9", "-o",
                       str(tmp_path / "x"), "--insecure-registry")  # fmt: skip
    assert unknown.returncode == 1
    assert f"failed to pull artifact from 'oci://{registry}/cli/nothing:v9'" in unknown.stderr
    assert "MANIFEST_UNKNOWN" in unknown.stderr or "NAME_UNKNOWN" in unknown.stderr
    assert not (tmp_path / "x").exists()


def test_progress_bar_only_on_a_terminal(registry: str, tmp_path: Path) -> None:
    url = f"oci://{registry}/cli/progress:v1"
    for name in ("quiet", "shown"):  # new content each time, so that there is an upload
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.yaml").write_text(f"nonce: {tmp_path}/{name}\n")
    quiet = tidegate("push", "artifact", url, "-f", str(tmp_path / "quiet"), "--insecure-registry")
    assert quiet.returncode == 0
    assert "%" not in quiet.stderr
    # `script` gives the command a pseudo-terminal, as an interactive shell would.
    command = (f"{sys.executable} -m tidegate push artifact {url} -f {tmp_path / 'shown'} "
               "--insecure-registry")  # fmt: skip
    shown = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stdout
    assert "pushing" in shown.stdout
    assert "100%" in shown.stdout
