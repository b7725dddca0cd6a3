"""Flux's source-controller, built from the Go module proxy as a peer for benchmarks.

Building it takes minutes, so the tests that run it do so only when it is cached already
(`tidegate dev prepare --source-controller`) or when TIDEGATE_SOURCE_CONTROLLER=1 asks for
the build.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tidegate.testing import (
    SOURCE_CONTROLLER_VERSION,
    MissingPrerequisite,
    _binaries,
    cache_dir,
    source_controller_binary,
    source_controller_crds,
)

CACHED = cache_dir() / "bin" / f"source-controller-v{SOURCE_CONTROLLER_VERSION}"

needs_binary = pytest.mark.skipif(
    os.environ.get("TIDEGATE_SOURCE_CONTROLLER") != "1"
    and not os.access(CACHED / "source-controller", os.X_OK),
    reason="source-controller is not cached; build it with `tidegate dev prepare "
    "--source-controller` or set TIDEGATE_SOURCE_CONTROLLER=1 (a few minutes)",
)


@needs_binary
@pytest.mark.timeout(3600)
def test_binary_runs_and_knows_its_storage_flags() -> None:
    binary = source_controller_binary(print)
    result = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    usage = result.stdout + result.stderr
    assert "--storage-path" in usage
    assert "--storage-adv-addr" in usage
    assert "--watch-all-namespaces" in usage


@needs_binary
@pytest.mark.timeout(3600)
def test_crds_sit_beside_the_binary() -> None:
    crds = source_controller_crds(print)
    names = {p.name for p in crds.glob("*.yaml")}
    assert "source.toolkit.fluxcd.io_ocirepositories.yaml" in names
    assert "source.toolkit.fluxcd.io_gitrepositories.yaml" in names


def test_missing_go_is_a_clear_prerequisite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEGATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_binaries.shutil, "which", lambda _name: None)
    monkeypatch.setattr(_binaries, "_executable", lambda _path: None)
    with pytest.raises(MissingPrerequisite, match="needs Go on PATH"):
        source_controller_binary(print)


def test_too_old_go_is_a_clear_prerequisite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_binaries, "_go", lambda *_args: "go1.24.2\n")
    with pytest.raises(MissingPrerequisite, match=r"needs Go 1\.26\.0 or newer.*Go 1\.24\.2"):
        _binaries._check_go_version("go", "module x\n\ngo 1.26.0\n", "x@v1", tmp_path, {})
    _binaries._check_go_version("go", "module x\n\ngo 1.24\n", "x@v1", tmp_path, {})
