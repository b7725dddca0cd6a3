"""Name references, and the generators and transformers together on fixture directories whose
expected output came from `kubectl kustomize` (kustomize v5.5.0)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tidegate import kustomize
from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._fieldspecs import TransformerConfig
from tidegate.kustomize._generators import generate, merge_generated
from tidegate.kustomize._hash import apply_hash_suffixes
from tidegate.kustomize._namereference import fix_name_references
from tidegate.kustomize._resource import Resource, ResourceList
from tidegate.kustomize._transformers import (
    apply_annotations,
    apply_images,
    apply_labels,
    apply_name_prefix_suffix,
    apply_namespace,
    apply_replicas,
)
from tidegate.kustomize._yaml import parse_documents, parse_kustomization_yaml

TESTDATA = Path(__file__).parent / "testdata"
# This package's fixtures (other directories of testdata belong to the rest of the build).
FIXTURES = sorted(
    p.parent
    for group in ("generators", "namereference", "transformers")
    for p in (TESTDATA / group).glob("*/expected.yaml")
)


class DirLoader:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def read_bytes(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def _accumulate(root: Path) -> tuple[ResourceList, TransformerConfig]:
    """What one kustomization level produces, in kustomize's order of steps; enough of a
    build for these fixtures (resources, generators, the transformers of this package), to
    check these functions apart from the full build."""
    kustomization = parse_kustomization_yaml((root / "kustomization.yaml").read_text())
    resources = ResourceList()
    config = TransformerConfig.default()
    for entry in kustomization.get("resources") or []:
        path = root / entry
        if path.is_dir():
            below, below_config = _accumulate(path)
            resources.extend(below)
            config = config.merge(below_config)
        else:
            for obj in parse_documents(path.read_text(), str(path)):
                resources.append(Resource(obj, origin=str(path)))
    for entry in kustomization.get("configurations") or []:
        document = parse_kustomization_yaml((root / entry).read_text())
        config = config.merge(TransformerConfig.from_configuration(document, entry))
    for entry in kustomization.get("crds") or []:
        definitions = json.loads((root / entry).read_text())
        config = config.merge(TransformerConfig.from_crd_definitions(definitions, entry))
    merge_generated(resources, generate(kustomization, DirLoader(root)))
    apply_namespace(resources, kustomization.get("namespace") or "", config)
    prefix, suffix = kustomization.get("namePrefix") or "", kustomization.get("nameSuffix") or ""
    apply_name_prefix_suffix(resources, prefix, suffix, config)
    labels, common_labels = kustomization.get("labels"), kustomization.get("commonLabels")
    apply_labels(resources, labels or [], common_labels or {}, config)
    apply_annotations(resources, kustomization.get("commonAnnotations") or {}, config)
    apply_replicas(resources, kustomization.get("replicas") or [], config)
    apply_images(resources, kustomization.get("images") or [], config)
    return resources, config


def mini_build(root: Path) -> list[dict[str, Any]]:
    resources, config = _accumulate(root)
    apply_hash_suffixes(resources)
    fix_name_references(resources, config)
    return resources.objects()


def _key(obj: dict[str, Any]) -> tuple[str, ...]:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace", ""), meta["name"])


def _same_objects(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    # The order of the output is the build's (legacy sort), not this package's.
    assert sorted(got, key=_key) == sorted(expected, key=_key)


@pytest.mark.parametrize("case", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_builds_like_kubectl(case: Path) -> None:
    expected = parse_documents((case / "expected.yaml").read_text(), "expected.yaml")
    _same_objects(mini_build(case), expected)


@pytest.mark.parametrize("case", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_through_the_build_is_byte_identical(case: Path) -> None:
    try:
        built = kustomize.build_yaml(case)
    except KustomizeError as exc:
        if "not supported" in str(exc):
            # `crds` markers beyond object references, and `configurations`, are
            # implemented here (TransformerConfig) but not yet passed in by the build.
            pytest.xfail(str(exc))
        raise
    assert built == (case / "expected.yaml").read_text()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("case", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_expectation_is_current(case: Path) -> None:
    """The stored expectation is still what kubectl kustomize prints."""
    live = subprocess.run(
        ["kubectl", "kustomize", str(case)], capture_output=True, text=True, check=True
    ).stdout
    assert parse_documents(live, "kubectl") == parse_documents(
        (case / "expected.yaml").read_text(), "expected.yaml"
    )


# --- small cases -----------------------------------------------------------------------------


def _resource(obj: dict[str, Any], *previous: dict[str, Any]) -> Resource:
    """A resource that was renamed from each of `previous` (name, namespace) in turn."""
    resource = Resource(copy.deepcopy(obj))
    final = copy.deepcopy(obj["metadata"])
    for meta in previous:
        resource.obj["metadata"] = dict(meta)
        resource.previous.append(resource.id())
    resource.obj["metadata"] = final
    return resource


def _cm(name: str, namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def _deployment(name: str, configmap: str, namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "template": {
                "spec": {
                    "volumes": [{"name": "v", "configMap": {"name": configmap}}],
                    "containers": [
                        {"name": "c", "envFrom": [{"configMapRef": {"name": configmap}}]}
                    ],
                }
            }
        },
    }


def test_reference_follows_a_rename() -> None:
    resources = ResourceList(
        [_resource(_cm("cfg-abc"), {"name": "cfg"}), _resource(_deployment("d", "cfg"))]
    )
    fix_name_references(resources)
    spec = resources.objects()[1]["spec"]["template"]["spec"]
    assert spec["volumes"][0]["configMap"]["name"] == "cfg-abc"
    assert spec["containers"][0]["envFrom"][0]["configMapRef"]["name"] == "cfg-abc"


def test_objects_never_renamed_are_not_referrals() -> None:
    resources = ResourceList([_resource(_cm("cfg")), _resource(_deployment("d", "cfg"))])
    fix_name_references(resources)
    assert resources.objects()[1] == _deployment("d", "cfg")


def test_reference_stays_in_its_namespace() -> None:
    resources = ResourceList(
        [
            _resource(_cm("a-cfg", "a"), {"name": "cfg", "namespace": "a"}),
            _resource(_cm("b-cfg", "b"), {"name": "cfg", "namespace": "b"}),
            _resource(_deployment("d", "cfg", "b")),
        ]
    )
    fix_name_references(resources)
    volume = resources.objects()[2]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == "b-cfg"


def test_ambiguous_referrals_are_an_error() -> None:
    resources = ResourceList(
        [
            _resource(_cm("x-cfg"), {"name": "cfg"}),
            _resource(_cm("y-cfg"), {"name": "cfg"}),
            _resource(_deployment("d", "cfg")),
        ]
    )
    with pytest.raises(KustomizeError, match="found multiple possible referrals"):
        fix_name_references(resources)


def test_role_binding_subject_gets_name_and_namespace() -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "p-sa", "namespace": "ns"},
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "crb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "sa"},
            {"kind": "ServiceAccount", "name": "other", "namespace": "x"},
        ],
    }
    resources = ResourceList([_resource(account, {"name": "sa"}), _resource(binding)])
    fix_name_references(resources)
    subjects = resources.objects()[1]["subjects"]
    assert subjects == [
        {"kind": "ServiceAccount", "name": "p-sa", "namespace": "ns"},
        {"kind": "ServiceAccount", "name": "other", "namespace": "x"},
    ]


def test_role_ref_only_names_the_kind_it_says() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "p-r"},
    }
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "q-r"},
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
    }
    resources = ResourceList(
        [
            _resource(role, {"name": "r"}),
            _resource(cluster_role, {"name": "r"}),
            _resource(binding),
        ]
    )
    fix_name_references(resources)
    assert resources.objects()[2]["roleRef"]["name"] == "q-r"
