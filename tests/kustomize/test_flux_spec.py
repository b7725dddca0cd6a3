"""A Flux Kustomization's spec on top of the artifact's kustomization (fluxcd/pkg kustomize,
`GenerateManifest` in kustomize_generator.go), and the render as kustomize-controller does
it: build, post-build substitution, common metadata.

Each case of testdata/flux-spec holds the Flux Kustomization (`ks.yaml`), the artifact
(`source/`), the kustomization Flux writes for it, by hand (`kustomization.yaml`), and
kubectl's build of that (`expected.yaml`, see regenerate.py there).
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate.envsubst import post_build_variables, substitute_object
from tidegate.kustomize import KustomizeError, build_resources, dump_all
from tidegate.kustomize._flux import (
    apply_common_metadata,
    apply_kustomization_spec,
    build_for_spec,
    is_local_relative_path,
    kustomization_for_spec,
)
from tidegate.kustomize._yaml import parse_kustomization_yaml

CASES_DIR = Path(__file__).parent / "testdata" / "flux-spec"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "ks.yaml").is_file())


def spec_of(case: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((case / "ks.yaml").read_text())["spec"]
    return spec


def variables_of(case: Path, spec: dict[str, Any]) -> dict[str, str]:
    """spec.postBuild's variables, its substituteFrom objects read from the case's
    `substitute-from.yaml` (what the cluster holds) as kustomize-controller reads them."""
    post_build = spec["postBuild"]
    present = {}
    path = case / "substitute-from.yaml"
    if path.is_file():
        for obj in yaml.safe_load_all(path.read_text()):
            present[(obj["kind"], obj["metadata"]["name"])] = obj
    sources = []
    for reference in post_build.get("substituteFrom", []):
        obj = present.get((reference["kind"], reference["name"]))
        if obj is None:
            assert reference.get("optional"), f"{reference} is missing and not optional"
            continue
        if obj["kind"] == "Secret":
            sources.append({k: base64.b64decode(v).decode() for k, v in obj["data"].items()})
        else:
            sources.append(obj.get("data", {}))
    return post_build_variables(sources, post_build.get("substitute"))


def render(case: Path) -> str:
    """What kustomize-controller would apply for the case, in its order of steps."""
    spec = spec_of(case)
    source = case / "source"
    directory = source / (spec.get("path") or ".")
    objects = build_for_spec(directory, spec, root=source).resources.objects()
    if "postBuild" in spec:
        variables = variables_of(case, spec)
        always = spec["postBuild"].get("substituteStrategy") == "Always"
        objects = [substitute_object(obj, variables, always=always) for obj in objects]
    objects = apply_common_metadata(objects, spec.get("commonMetadata"))
    return dump_all(objects)


@pytest.mark.parametrize("name", CASES)
def test_kustomization_is_the_one_flux_writes(name: str) -> None:
    case = CASES_DIR / name
    spec = spec_of(case)
    source = case / "source"
    written = kustomization_for_spec(source / (spec.get("path") or "."), spec, root=source)
    assert written == parse_kustomization_yaml((case / "kustomization.yaml").read_text())


@pytest.mark.parametrize("name", CASES)
def test_render_matches_kubectl(name: str) -> None:
    case = CASES_DIR / name
    assert render(case) == (case / "expected.yaml").read_text()


# -- images: fluxcd/pkg's Test_Images, on the kustomization ----------------------------------

APP = "ghcr.io/example/app"
DIGEST = "sha256:" + "a" * 64
REGISTRY = "registry.example.com/app"

IMAGES = [
    # (existing entry, Flux's entry, merged entry)
    ({"newTag": "v1.2.3"}, {"newName": REGISTRY}, {"newName": REGISTRY, "newTag": "v1.2.3"}),
    ({"newName": REGISTRY}, {"newTag": "v2.0.0"}, {"newName": REGISTRY, "newTag": "v2.0.0"}),
    ({"digest": DIGEST}, {"newName": REGISTRY}, {"newName": REGISTRY, "digest": DIGEST}),
    ({"digest": DIGEST}, {"newTag": "v2.0.0"}, {"newTag": "v2.0.0"}),
    ({"newTag": "v1.2.3"}, {"digest": DIGEST}, {"digest": DIGEST}),
    (
        {"newName": REGISTRY, "digest": DIGEST},
        {"newTag": "v2.0.0"},
        {"newName": REGISTRY, "newTag": "v2.0.0"},
    ),
    (
        {"newTag": "v1.2.3"},
        {"newTag": "v2.0.0", "digest": DIGEST},
        {"newTag": "v2.0.0", "digest": DIGEST},
    ),
    ({"newName": REGISTRY, "newTag": "v1.2.3"}, {}, {"newName": REGISTRY, "newTag": "v1.2.3"}),
    (
        {"newName": "old.example.com/app", "newTag": "v1.2.3"},
        {"newName": REGISTRY, "newTag": "v2.0.0"},
        {"newName": REGISTRY, "newTag": "v2.0.0"},
    ),
    (None, {"newName": REGISTRY, "newTag": "v2.0.0"}, {"newName": REGISTRY, "newTag": "v2.0.0"}),
]


@pytest.mark.parametrize(("existing", "flux", "merged"), IMAGES)
def test_images_merge_by_name(
    existing: dict[str, str] | None, flux: dict[str, str], merged: dict[str, str]
) -> None:
    kustomization: dict[str, Any] = {"resources": ["deployment.yaml"]}
    if existing is not None:
        kustomization["images"] = [{"name": "other"}, {"name": APP, **existing}]
    result = apply_kustomization_spec(kustomization, {"images": [{"name": APP, **flux}]})
    assert result["images"][-1] == {"name": APP, **merged}
    assert len(result["images"]) == (2 if existing is not None else 1)


# -- the other fields -------------------------------------------------------------------------


def test_spec_fields_replace_or_extend() -> None:
    kustomization = {
        "resources": ["a.yaml"],
        "namespace": "base",
        "namePrefix": "old-",
        "patches": [{"path": "patch.yaml"}],
        "components": ["../a"],
        "buildMetadata": ["transformerAnnotations"],
    }
    before = copy.deepcopy(kustomization)
    spec = {
        "targetNamespace": "apps",
        "nameSuffix": "-x",
        "patches": [
            {"patch": "- op: remove\n  path: /spec/replicas\n", "target": {"kind": "Deployment"}},
            {"patch": "kind: Service\n", "target": {"name": "", "group": "apps"}},
            {"patch": "kind: ConfigMap\n"},
        ],
        "components": ["../b"],
        "buildMetadata": ["originAnnotations"],
        "commonMetadata": {"labels": {"team": "a"}},
        "postBuild": {"substitute": {"a": "b"}},
    }
    assert apply_kustomization_spec(kustomization, spec) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["a.yaml"],
        "namespace": "apps",
        "namePrefix": "old-",
        "nameSuffix": "-x",
        "patches": [
            {"path": "patch.yaml"},
            {"patch": "- op: remove\n  path: /spec/replicas\n", "target": {"kind": "Deployment"}},
            {"patch": "kind: Service\n", "target": {"group": "apps"}},
            {"patch": "kind: ConfigMap\n"},
        ],
        "components": ["../a", "../b"],
        "buildMetadata": ["originAnnotations"],
    }
    assert kustomization == before  # the input is left as it was


def test_an_empty_spec_changes_nothing_but_the_type() -> None:
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "resources": ["a.yaml"]}
    assert apply_kustomization_spec(kustomization, {}) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["a.yaml"],
    }


def test_found_kustomization_without_resources_gets_origin_annotations() -> None:
    found = apply_kustomization_spec({"configMapGenerator": [{"name": "c"}]}, {})
    assert found["buildMetadata"] == ["originAnnotations"]
    # Not a generated one: it has a placeholder namespace instead.
    generated = {"namespace": "_placeholder"}
    assert "buildMetadata" not in apply_kustomization_spec(generated, {}, generated=True)
    spec = {"buildMetadata": ["transformerAnnotations"]}
    assert apply_kustomization_spec({}, spec)["buildMetadata"] == ["transformerAnnotations"]


def test_empty_directory_with_a_target_namespace(tmp_path: Path) -> None:
    written = kustomization_for_spec(tmp_path, {"targetNamespace": "apps"})
    assert written == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "apps",
    }
    built = build_resources(tmp_path, kustomization=written, load_restrictor="LoadRestrictionsNone")
    assert built.resources.objects() == []


@pytest.mark.parametrize(
    "path",
    [
        "https://github.com/org/repo//components/tls",
        "github.com/org/repo/components",
        "GIT::https://example.com/repo",
        "git@github.com:org/repo",
        "ssh://git@example.com/repo",
        "/etc/components",
        "file:///etc/components",
    ],
)
def test_components_must_be_local_and_relative(path: str) -> None:
    assert not is_local_relative_path(path)
    with pytest.raises(KustomizeError) as failure:
        apply_kustomization_spec({"resources": ["a.yaml"]}, {"components": [path]})
    assert str(failure.value) == f"component path '{path}' must be local and relative"


@pytest.mark.parametrize("path", ["../tls", "components/tls", "gh", "file://relative", "https:"])
def test_local_relative_component_paths(path: str) -> None:
    assert is_local_relative_path(path)


def test_missing_components_are_kept_unless_ignored(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "components" / "tls").mkdir(parents=True)
    (tmp_path.parent / f"{tmp_path.name}-outside").mkdir(exist_ok=True)
    components = ["../components/tls", "../components/missing", f"../../{tmp_path.name}-outside"]
    spec: dict[str, Any] = {"components": components}
    kustomization = {"resources": ["a.yaml"]}
    assert apply_kustomization_spec(kustomization, spec)["components"] == components
    spec["ignoreMissingComponents"] = True
    written = apply_kustomization_spec(kustomization, spec, path=tmp_path / "app", root=tmp_path)
    # What lies outside the root does not exist for Flux's filesystem either.
    assert written["components"] == ["../components/tls"]
    with pytest.raises(ValueError, match="needs the directory built"):
        apply_kustomization_spec(kustomization, spec)


def test_common_metadata_goes_on_metadata_only() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}},
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    before = copy.deepcopy([deployment, service])
    common = {"labels": {"team": "payments"}, "annotations": {"owner": "payments"}}
    result = apply_common_metadata([deployment, service], common)
    assert result[0]["metadata"] == {
        "name": "web",
        "labels": {"team": "payments"},
        "annotations": {"owner": "payments"},
    }
    assert result[0]["spec"] == before[0]["spec"]
    assert result[1]["metadata"]["labels"] == {"team": "payments"}
    assert [deployment, service] == before
    # Nothing to set: no empty maps appear.
    assert apply_common_metadata([service], {"labels": {}})[0] == service
    assert apply_common_metadata([service], None)[0] == service
