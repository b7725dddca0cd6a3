"""Artifacts move both ways between tidegate and the real `flux` CLI.

The flux CLI comes from PATH or is built once from the Go module proxy (`make test` prepares it
with `tidegate dev prepare --flux`), so this runs wherever the test suite runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import Reference, Registry
from tidegate.testing import flux_binary

pytestmark = pytest.mark.registry
APP = Path(__file__).parent / "testdata" / "app"


@pytest.fixture(scope="module")
def flux() -> Path:
    return flux_binary(print)


def run_flux(flux: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(flux), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(home / "none")},
    )


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_tidegate_push_flux_pull(flux: Path, registry: str, tmp_path: Path) -> None:
    async with Registry(registry, insecure=True, docker_config=False) as client:
        target = Reference.parse(f"{registry}/compat/to-flux:v1")
        pushed = await oci.push(
            client, target, APP, source="https://git.example/app", revision="main@sha1:abc"
        )
        ours = tmp_path / "ours"
        await oci.pull(client, Reference.parse(f"{registry}/compat/to-flux:v1"), ours)
    out = tmp_path / "flux-out"
    out.mkdir()  # flux wants the folder to exist
    pulled = run_flux(flux, "pull", "artifact", f"oci://{registry}/compat/to-flux:v1", "-o",
                      str(out), "--insecure-registry", home=tmp_path)  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert files(out) == files(ours)
    assert "main@sha1:abc" in pulled.stderr + pulled.stdout

    listed = run_flux(flux, "list", "artifacts", f"oci://{registry}/compat/to-flux",
                      "--insecure-registry", home=tmp_path)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert pushed.digest in listed.stdout
    assert "https://git.example/app" in listed.stdout

    # flux's diff compares the digest of a tarball it builds with the layer's digest, so it
    # calls any artifact another tool archived different, even with the same files;
    # tidegate's diff compares content (see test_diff_compares_content).
    archived = tmp_path / "archived"
    shutil.copytree(APP, archived, ignore=shutil.ignore_patterns("NOTES.md", "secrets.env"))
    flux_says = run_flux(flux, "diff", "artifact", f"oci://{registry}/compat/to-flux:v1",
                         "--path", str(archived), "--insecure-registry", home=tmp_path)  # fmt: skip
    assert flux_says.returncode == 1
    assert "differs" in flux_says.stderr
    async with Registry(registry, insecure=True, docker_config=False) as client:
        ours_says = await oci.diff(client, Reference.parse(f"{registry}/compat/to-flux:v1"),
                                   archived)  # fmt: skip
    assert ours_says.same, ours_says


async def test_flux_push_tidegate_pull(flux: Path, registry: str, tmp_path: Path) -> None:
    url = f"oci://{registry}/compat/from-flux:v1"
    pushed = run_flux(flux, "push", "artifact", url, "--path", str(APP), "--source",
                      "https://git.example/app", "--revision", "main@sha1:def",
                      "--insecure-registry", "-o", "json", home=tmp_path)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    flux_digest = json.loads(pushed.stdout)["digest"]
    async with Registry(registry, insecure=True, docker_config=False) as client:
        ref = Reference.parse(url)
        manifest, parsed = await oci.fetch_manifest(client, ref)
        assert manifest.digest == flux_digest
        assert parsed["config"]["mediaType"] == oci.FLUX_CONFIG
        assert [layer["mediaType"] for layer in parsed["layers"]] == [oci.FLUX_CONTENT]
        assert parsed["annotations"][oci.REVISION] == "main@sha1:def"
        out = tmp_path / "out"
        result = await oci.pull(client, ref, out)
        assert result.digest == flux_digest
        # Both leave out the default list (logo.png). tidegate also honours .sourceignore
        # files on push, as source-controller does for Git; the flux CLI does not.
        theirs = await oci.diff(client, ref, APP)
        assert theirs.only_in_artifact == ["NOTES.md", "overlays/prod/secrets.env"]
        assert not theirs.changed
        assert not theirs.only_local
        listed = await oci.list_artifacts(client, "compat/from-flux")
        assert [(a.tag, a.digest, a.revision) for a in listed] == [
            ("v1", flux_digest, "main@sha1:def")
        ]
    assert files(out) == {k: v for k, v in files(APP).items() if k != "logo.png"}
