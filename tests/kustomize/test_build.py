"""Builds of real directories (tests/kustomize/testdata/build, errors) against what kubectl's
kustomize v5.5.0 printed for them (see testdata/regenerate.py), and live against kubectl when
it is on PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tidegate import kustomize
from tidegate.kustomize import KustomizeError, build, build_yaml, run

TESTDATA = Path(__file__).parent / "testdata"
BUILD_CASES = sorted(p for p in (TESTDATA / "build").iterdir() if p.is_dir())
ERRORS = TESTDATA / "errors"
ERROR_CASES = sorted(p for p in ERRORS.iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")


def _ids(cases: list[Path]) -> list[str]:
    return [case.name for case in cases]


def _kubectl(directory: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("case", BUILD_CASES, ids=_ids(BUILD_CASES))
def test_build_matches_kustomize(case: Path) -> None:
    assert build_yaml(case) == (case / "expected.yaml").read_text()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
@pytest.mark.parametrize("case", BUILD_CASES, ids=_ids(BUILD_CASES))
def test_build_matches_kubectl_live(case: Path) -> None:
    reference = _kubectl(case)
    assert reference.returncode == 0, reference.stderr
    assert build_yaml(case) == reference.stdout


@pytest.mark.parametrize("case", [c for c in ERROR_CASES if (c / "expected-error.txt").is_file()],
                         ids=lambda c: c.name)  # fmt: skip
def test_error_matches_kustomize(case: Path) -> None:
    expected = (case / "expected-error.txt").read_text().rstrip("\n")
    with pytest.raises(KustomizeError) as failure:
        build_yaml(case, root=ERRORS, flux=False)
    assert str(failure.value).rstrip("\n") == expected.replace("{errors}", str(ERRORS.resolve()))


def test_build_returns_objects_in_output_order() -> None:
    objects = build(TESTDATA / "build" / "sort-legacy")
    kinds = [o["kind"] for o in objects]
    assert kinds[:4] == ["Namespace", "Namespace", "ResourceQuota", "CustomResourceDefinition"]
    assert kinds[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


def test_warnings_are_kustomizes() -> None:
    result = run(TESTDATA / "build" / "deprecated-fields")
    assert result.warnings == [
        "# Warning: 'bases' is deprecated. Please use 'resources' instead. Run 'kustomize edit "
        "fix' to update your Kustomization automatically.",
        "# Warning: 'commonLabels' is deprecated. Please use 'labels' instead. Run 'kustomize "
        "edit fix' to update your Kustomization automatically.",
        "# Warning: 'imageTags' is deprecated. Please use 'images' instead. Run 'kustomize edit "
        "fix' to update your Kustomization automatically.",
        "# Warning: 'patchesJson6902' is deprecated. Please use 'patches' instead. Run "
        "'kustomize edit fix' to update your Kustomization automatically.",
        "# Warning: 'patchesStrategicMerge' is deprecated. Please use 'patches' instead. Run "
        "'kustomize edit fix' to update your Kustomization automatically.",
    ]


def test_unused_vars_are_a_warning() -> None:
    result = run(TESTDATA / "build" / "vars")
    assert "well-defined vars that were never replaced: UNUSED" in result.warnings


# --- the sandbox ------------------------------------------------------------------------------


def test_base_outside_the_root_is_refused() -> None:
    overlay = TESTDATA / "build" / "overlays-of-overlays" / "production"
    with pytest.raises(KustomizeError, match=r"is not in or below '.*/production'"):
        build(overlay)
    assert build(overlay, root=overlay.parent)  # the same build with the repository as root


def test_flux_restrictor_reads_beside_the_kustomization_but_not_outside_the_root(
    tmp_path: Path,
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "shared.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n")
    (tmp_path / "app" / "kustomization.yaml").write_text("resources:\n- ../shared.yaml\n")
    with pytest.raises(KustomizeError, match=r"security; file '.*/shared.yaml' is not in or below"):
        build(tmp_path / "app", root=tmp_path)
    objects = build(tmp_path / "app", root=tmp_path, load_restrictor="LoadRestrictionsNone")
    assert [o["metadata"]["name"] for o in objects] == ["s"]
    with pytest.raises(KustomizeError, match=r"path '.*/shared.yaml' is not in or below '.*/app'"):
        build(tmp_path / "app", load_restrictor="LoadRestrictionsNone")


@pytest.mark.parametrize(
    "resource",
    [
        "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.5.0",
        "github.com/kubernetes-sigs/kustomize/examples/helloWorld",
        "git@github.com:kubernetes-sigs/kustomize.git",
        "ssh://git@example.com/repo.git",
        "base?ref=main",
    ],
)
def test_remote_resources_are_refused(tmp_path: Path, resource: str) -> None:
    (tmp_path / "kustomization.yaml").write_text(f"resources:\n- {resource}\n")
    with pytest.raises(KustomizeError) as failure:
        build(tmp_path)
    assert str(failure.value) == (
        f"accumulating resources: accumulating resources from '{resource}': remote resources "
        f"are not allowed: only files below '{tmp_path.resolve()}' are read"
    )


def test_remote_components_are_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("components:\n- github.com/org/repo/c\n")
    with pytest.raises(KustomizeError, match=r"remote base 'github.com/org/repo/c' is not allowed"):
        build(tmp_path)


def test_absolute_base_is_refused() -> None:
    with pytest.raises(KustomizeError, match="new root '/etc' cannot be absolute"):
        build(ERRORS / "absolute-base")


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n- big.yaml\n")
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: " + "a" * 4096
    (tmp_path / "big.yaml").write_text(body + "\n")
    with pytest.raises(KustomizeError, match=r"file 'big.yaml' is larger than the limit of 1024"):
        build(tmp_path, max_file_size=1024)
    assert build(tmp_path)[0]["metadata"]["name"] == "big"


def test_oversized_kustomization_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\n" + "#" * 2048 + "\n")
    with pytest.raises(KustomizeError, match="larger than the limit"):
        build(tmp_path, max_file_size=1024)


def test_fifo_is_the_order_of_the_files() -> None:
    objects = build(TESTDATA / "build" / "sort-fifo")
    assert [o["metadata"]["name"] for o in objects][:3] == ["validate", "b", "a"]


def test_public_api() -> None:
    assert set(kustomize.__all__) >= {"build", "build_yaml", "run", "KustomizeError", "Loader"}
