"""The Kustomization kind: its CRD has the same facts as Flux's, and its parser reads Flux's
manifests and status with Flux's defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate import api
from tidegate.api import (
    CrossNamespaceSourceReference,
    DependencyReference,
    InvalidObject,
    Kustomization,
    KustomizeImage,
    ResourceRef,
)

TESTDATA = Path(__file__).parent / "testdata"
FLUX = TESTDATA / "flux"
EXAMPLES = TESTDATA / "examples"
KUSTOMIZATION_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("kustomization-*.yaml"))


def without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [without_descriptions(item) for item in value]
    return value


def kustomization_crd() -> dict[str, Any]:
    (crd,) = [c for c in api.crds() if c["metadata"]["name"] == Kustomization.info.crd_name]
    return crd


def openapi_schema() -> dict[str, Any]:
    schema: dict[str, Any] = kustomization_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def example(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return obj


def test_matches_flux_structurally() -> None:
    facts = yaml.safe_load((FLUX / "kustomizations.v1.yaml").read_text())
    crd = kustomization_crd()
    assert crd["metadata"]["name"] == facts["name"]
    assert crd["spec"]["group"] == facts["group"]
    assert crd["spec"]["scope"] == facts["scope"]
    assert crd["spec"]["names"] == facts["names"]
    (version,) = crd["spec"]["versions"]
    expected = facts["version"]
    for key in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
        assert version[key] == expected[key], key
    generated = without_descriptions(version["schema"]["openAPIV3Schema"])
    flux_spec = expected["openAPIV3Schema"]["properties"]["spec"]
    for name, schema in flux_spec["properties"].items():
        assert generated["properties"]["spec"]["properties"][name] == schema, name
    assert set(generated["properties"]["spec"]["properties"]) == set(flux_spec["properties"])
    flux_status = expected["openAPIV3Schema"]["properties"]["status"]
    for name, schema in flux_status["properties"].items():
        assert generated["properties"]["status"]["properties"][name] == schema, name
    assert generated == expected["openAPIV3Schema"]


def test_schema_facts() -> None:
    schema = openapi_schema()
    spec = schema["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["interval", "prune", "sourceRef"]
    assert schema["properties"]["status"]["default"] == {"observedGeneration": -1}
    assert "required" not in schema
    duration = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
    for name in ("interval", "retryInterval", "timeout"):
        assert props[name]["pattern"] == duration, name  # hours too, unlike a source's timeout
    assert props["sourceRef"]["properties"]["kind"]["enum"] == [
        "OCIRepository",
        "GitRepository",
        "Bucket",
        "ExternalArtifact",
    ]
    assert props["deletionPolicy"]["enum"] == [
        "MirrorPrune",
        "Delete",
        "WaitForTermination",
        "Orphan",
    ]
    assert props["force"]["default"] is False
    substitute_from = props["postBuild"]["properties"]["substituteFrom"]["items"]
    assert substitute_from["properties"]["optional"]["default"] is False
    assert substitute_from["properties"]["kind"]["enum"] == ["Secret", "ConfigMap"]
    assert (props["targetNamespace"]["minLength"], props["targetNamespace"]["maxLength"]) == (1, 63)
    assert (props["namePrefix"]["minLength"], props["namePrefix"]["maxLength"]) == (1, 200)
    rules = [r["rule"] for r in props["kubeConfig"]["x-kubernetes-validations"]]
    assert rules == [
        "has(self.configMapRef) || has(self.secretRef)",
        "!has(self.configMapRef) || !has(self.secretRef)",
    ]
    inventory = schema["properties"]["status"]["properties"]["inventory"]
    assert inventory["required"] == ["entries"]
    assert inventory["properties"]["entries"]["items"]["required"] == ["id", "v"]
    assert all(p.get("description") for p in props.values())


def test_names_and_columns() -> None:
    names = kustomization_crd()["spec"]["names"]
    assert names["shortNames"] == ["ks"]
    assert names["categories"] == ["all", "fluxcd", "fluxcd-appliers"]
    columns = kustomization_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Age", "Ready", "Status"]


def test_registered_with_the_other_kinds() -> None:
    assert Kustomization in api.KINDS
    assert Kustomization.info.api_version == "kustomize.toolkit.fluxcd.io/v1"
    assert [c["spec"]["names"]["kind"] for c in api.crds()] == [k.info.kind for k in api.KINDS]


@pytest.mark.parametrize("name", KUSTOMIZATION_EXAMPLES)
def test_flux_examples_parse(name: str) -> None:
    obj = example(name)
    ks = Kustomization.from_object(obj)
    assert ks.metadata.name == obj["metadata"]["name"]
    assert ks.spec.prune is obj["spec"]["prune"]
    # Written back, it parses to the same value.
    assert Kustomization.from_object(ks.to_object()) == ks


def test_defaults_and_accessors() -> None:
    ks = Kustomization.from_object(example("kustomization-podinfo.yaml"))
    spec = ks.spec
    assert spec.interval == 600.0
    assert spec.source_ref == CrossNamespaceSourceReference(kind="GitRepository", name="podinfo")
    assert str(spec.source_ref) == "GitRepository/podinfo"
    assert spec.force is False
    assert spec.wait is False
    assert spec.deletion_policy is None
    assert ks.deletion_policy == "MirrorPrune"
    assert ks.timeout == 60.0
    assert ks.retry_interval == 600.0
    assert ks.status.observed_generation == -1
    assert ks.status.inventory is None


def test_timeout_defaults_to_interval_less_30s_and_at_least_30s() -> None:
    obj = example("kustomization-oci.yaml")
    assert Kustomization.from_object(obj).timeout == 570.0
    obj["spec"]["interval"] = "45s"
    assert Kustomization.from_object(obj).timeout == 30.0
    obj["spec"]["retryInterval"] = "90s"
    assert Kustomization.from_object(obj).retry_interval == 90.0


def test_build_fields() -> None:
    spec = Kustomization.from_object(example("kustomization-build.yaml")).spec
    assert (spec.name_prefix, spec.name_suffix, spec.target_namespace) == (
        "prefix-",
        "-suffix",
        "apps",
    )
    assert spec.common_metadata is not None
    assert spec.common_metadata.labels == {"app.kubernetes.io/part-of": "my-app"}
    assert spec.patches[0].target is not None
    assert spec.patches[0].target.label_selector == "app.kubernetes.io/part-of=my-app"
    assert spec.patches[1].patch.startswith("- op: add\n")
    assert spec.images[3] == KustomizeImage(
        name="podinfo",
        digest="sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
    )
    assert spec.components == ("../ingress", "../tls")


def test_dependencies() -> None:
    spec = Kustomization.from_object(example("kustomization-depends-on.yaml")).spec
    assert str(spec.depends_on[0]) == "flux-system/cert-manager"
    assert spec.depends_on[1].name == "app-backend"
    assert spec.depends_on[1].ready_expr.startswith("dep.metadata.labels['app/version']")
    assert str(DependencyReference(name="a", ready_expr="true")) == "a@true"


def test_post_build() -> None:
    post_build = Kustomization.from_object(example("kustomization-post-build.yaml")).spec.post_build
    assert post_build is not None
    assert post_build.substitute == {"cluster_env": "prod", "cluster_region": "eu-central-1"}
    assert [(r.kind, r.name, r.optional) for r in post_build.substitute_from] == [
        ("ConfigMap", "cluster-vars", True),
        ("Secret", "cluster-secret-vars", False),
    ]
    assert post_build.substitute_strategy is None


def test_status_as_kustomize_controller_writes_it() -> None:
    obj = example("kustomization-status.yaml")
    status = Kustomization.from_object(obj).status
    assert status.observed_generation == 1
    assert status.last_handled_reconcile_at == "1700000000"
    assert status.last_applied_origin_revision.startswith("v1.0.1@sha1:")
    assert status.conditions[0].reason == "ReconciliationSucceeded"
    assert status.inventory is not None
    assert status.inventory.entries[1] == ResourceRef(
        id="default_podinfo_apps_Deployment", version="v1"
    )
    first = status.history[0]
    assert first.first_reconciled == dt.datetime(2025, 8, 15, 10, 11, tzinfo=dt.UTC)
    assert first.last_reconciled_duration == "2.818583s"
    assert first.total_reconciliations == 2
    assert first.metadata["revision"].startswith("v1.0.1@")
    # The status written back is the one read, field for field.
    assert Kustomization.from_object(obj).to_object()["status"] == obj["status"]


def test_an_empty_inventory_keeps_its_entries() -> None:
    obj = example("kustomization-status.yaml")
    obj["status"]["inventory"] = {"entries": []}
    assert Kustomization.from_object(obj).to_object()["status"]["inventory"] == {"entries": []}
    obj["status"]["inventory"] = {}
    inventory = Kustomization.from_object(obj).status.inventory
    assert inventory is not None
    assert inventory.entries == ()


INVALID = [
    ({"interval": "5 minutes"}, "spec.interval"),
    ({"timeout": "1d"}, "spec.timeout"),
    ({"prune": "yes"}, "spec.prune"),
    ({"sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}, "spec.sourceRef.kind"),
    ({"sourceRef": {"kind": "OCIRepository"}}, "spec.sourceRef.name"),
    ({"deletionPolicy": "Keep"}, "spec.deletionPolicy"),
    ({"targetNamespace": ""}, "spec.targetNamespace"),
    ({"targetNamespace": "n" * 64}, "spec.targetNamespace"),
    ({"namePrefix": "p" * 201}, "spec.namePrefix"),
    ({"decryption": {"provider": "vault"}}, "spec.decryption.provider"),
    ({"healthChecks": [{"name": "backend"}]}, "spec.healthChecks[0].kind"),
    ({"healthCheckExprs": [{"apiVersion": "v1", "kind": "X"}]}, "spec.healthCheckExprs[0].current"),
    ({"images": [{"newTag": "v1"}]}, "spec.images[0].name"),
    ({"patches": [{"target": {"kind": "Deployment"}}]}, "spec.patches[0].patch"),
    ({"postBuild": {"substituteStrategy": "Never"}}, "spec.postBuild.substituteStrategy"),
    (
        {"postBuild": {"substituteFrom": [{"kind": "Namespace", "name": "vars"}]}},
        "spec.postBuild.substituteFrom[0].kind",
    ),
    (
        {"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": ""}]}},
        "spec.postBuild.substituteFrom[0].name",
    ),
    ({"buildMetadata": ["managedByLabel"]}, "spec.buildMetadata[0]"),
    ({"ignore": [{"target": {"kind": "Secret"}}]}, "spec.ignore[0].paths"),
]


def kustomization(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "OCIRepository", "name": "app"},
            **spec,
        },
    }


@pytest.mark.parametrize(("spec", "where"), INVALID)
def test_invalid_objects_refused(spec: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidObject) as refused:
        Kustomization.from_object(kustomization(**spec))
    assert refused.value.field.startswith(where)
    assert str(refused.value).startswith("invalid Kustomization 'apps/app': ")


@pytest.mark.parametrize("name", ["interval", "prune", "sourceRef"])
def test_required_fields(name: str) -> None:
    obj = kustomization()
    del obj["spec"][name]
    with pytest.raises(InvalidObject, match=rf"spec\.{name}: required value"):
        Kustomization.from_object(obj)


def test_other_versions_refused() -> None:
    obj = kustomization()
    obj["apiVersion"] = "kustomize.toolkit.fluxcd.io/v1beta2"
    with pytest.raises(InvalidObject, match="unsupported version"):
        Kustomization.from_object(obj)
