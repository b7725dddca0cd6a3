"""Flux's generation step for directories without a kustomization file (fluxcd/pkg kustomize,
kustomize_generator.go), and builds of such directories against kubectl building the same
tree with the kustomization Flux would have written (testdata/flux/CASE.kustomization.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tidegate.kustomize import KustomizeError, build, build_yaml, generate_kustomization
from tidegate.kustomize._yaml import parse_documents

FLUX = Path(__file__).parent / "testdata" / "flux"


def test_generated_kustomization_is_fluxs() -> None:
    reference = parse_documents((FLUX / "app.kustomization.yaml").read_text(), "reference")[0]
    assert generate_kustomization(FLUX / "app") == reference


def test_build_without_kustomization_matches_kubectl_with_fluxs() -> None:
    assert build_yaml(FLUX / "app") == (FLUX / "app.expected.yaml").read_text()


def test_without_flux_the_directory_needs_a_kustomization() -> None:
    with pytest.raises(KustomizeError, match=r"unable to find one of 'kustomization.yaml'"):
        build(FLUX / "app", flux=False)


def test_empty_directory_gets_the_placeholder_namespace() -> None:
    assert generate_kustomization(FLUX / "empty") == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "_placeholder",
    }
    assert build(FLUX / "empty") == []


def test_files_that_are_not_kubernetes_objects_are_an_error() -> None:
    values = (FLUX / "not-kubernetes" / "values.yaml").resolve()
    with pytest.raises(KustomizeError) as failure:
        build(FLUX / "not-kubernetes")
    assert str(failure.value) == (
        f"failed to decode Kubernetes YAML from {values}: missing Resource metadata"
    )


def test_invalid_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    with pytest.raises(
        KustomizeError, match=r"failed to decode Kubernetes YAML from .*broken.yaml"
    ):
        generate_kustomization(tmp_path)


def test_a_directory_with_a_kustomization_is_built_as_it_is(tmp_path: Path) -> None:
    shutil.copytree(FLUX / "app", tmp_path / "app")
    (tmp_path / "app" / "kustomization.yaml").write_text("resources:\n- service.yml\n")
    assert [o["kind"] for o in build(tmp_path / "app")] == ["Service"]


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n")
    (tmp_path / "app" / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(KustomizeError, match="is not in or below"):
        generate_kustomization(tmp_path / "app")
    assert generate_kustomization(tmp_path / "app", root=tmp_path)["resources"] == ["./link.yaml"]
