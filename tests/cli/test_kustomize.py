"""`tidegate kustomize build DIR` as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTDATA = Path(__file__).parent.parent / "kustomize" / "testdata"


def tidegate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_build_prints_what_kustomize_prints() -> None:
    case = TESTDATA / "build" / "components-order"
    result = tidegate("kustomize", "build", str(case))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (case / "expected.yaml").read_text()


def test_warnings_go_to_stderr() -> None:
    case = TESTDATA / "build" / "deprecated-fields"
    result = tidegate("kustomize", "build", str(case))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (case / "expected.yaml").read_text()
    assert "# Warning: 'bases' is deprecated." in result.stderr


def test_bases_beside_the_directory_are_read_below_the_current_directory() -> None:
    case = TESTDATA / "build" / "overlays-of-overlays"
    result = tidegate("kustomize", "build", "production", cwd=case)
    assert result.returncode == 0, result.stderr
    inside = tidegate("kustomize", "build", ".", cwd=case / "production")
    assert inside.returncode == 1
    assert "is not in or below" in inside.stderr
    rooted = tidegate("kustomize", "build", ".", "--root", "..", cwd=case / "production")
    assert rooted.returncode == 0, rooted.stderr
    assert rooted.stdout == result.stdout


def test_failure_exits_1_with_kustomizes_error() -> None:
    result = tidegate("kustomize", "build", str(TESTDATA / "errors" / "unknown-field"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == 'Error: invalid Kustomization: json: unknown field "namePrefixes"\n'


def test_directory_without_kustomization_builds_as_flux() -> None:
    result = tidegate("kustomize", "build", str(TESTDATA / "flux" / "app"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (TESTDATA / "flux" / "app.expected.yaml").read_text()


def test_listed_in_help() -> None:
    result = tidegate("--help")
    assert "kustomize" in result.stdout
