"""The Kustomization CRD on a real API server: established, defaulting and validating as Flux's
does; Flux's documented manifests are accepted unchanged and tidegate parses what the server
stores; tidegate's parser refuses what the server refuses."""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate import api
from tidegate.api import InvalidObject, Kustomization
from tidegate.kube import Client, Invalid
from tidegate.testing import Environment

from .test_kustomization import INVALID, KUSTOMIZATION_EXAMPLES

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).parent / "testdata" / "examples"
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
API_VERSION = "kustomize.toolkit.fluxcd.io/v1"


@pytest.fixture
async def installed(kube: Client) -> list[str]:
    return await api.install_crds(kube, timeout=60)


def kustomization(namespace: str, name: str = "app", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "5m",
            "prune": True,
            "sourceRef": {"kind": "OCIRepository", "name": "app"},
            **spec,
        },
    }


def example(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = namespace
    obj.pop("status", None)
    return obj


def with_server_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the API server stores it: Flux's CRD defaults `force` and each
    `substituteFrom[].optional` to false."""
    spec = copy.deepcopy(spec)
    spec.setdefault("force", False)
    for reference in spec.get("postBuild", {}).get("substituteFrom", []):
        reference.setdefault("optional", False)
    return spec


def without_false(value: Any) -> Any:
    """`value` without the false booleans Go's omitempty leaves out (`prune` is not omitempty)."""
    if isinstance(value, dict):
        return {k: without_false(v) for k, v in value.items() if v is not False or k == "prune"}
    if isinstance(value, list):
        return [without_false(item) for item in value]
    return value


async def test_crd_becomes_established(kube: Client, installed: list[str]) -> None:
    assert Kustomization.info.crd_name in installed
    crd = await kube.get(*CRD, Kustomization.info.crd_name)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["ks"]
    assert crd["status"]["acceptedNames"]["categories"] == ["all", "fluxcd", "fluxcd-appliers"]
    assert crd["status"]["storedVersions"] == ["v1"]


async def test_defaults_applied_on_create(
    kube: Client, namespace: str, installed: list[str]
) -> None:
    created = await kube.create(
        kustomization(
            namespace,
            postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]},
        )
    )
    assert created["spec"]["force"] is False
    assert created["spec"]["postBuild"]["substituteFrom"] == [
        {"kind": "ConfigMap", "name": "vars", "optional": False}
    ]
    stored = await kube.get(API_VERSION, "Kustomization", "app", namespace)
    assert stored["status"] == {"observedGeneration": -1}
    ks = Kustomization.from_object(stored)
    assert ks.metadata.generation == 1
    assert ks.spec.interval == 300.0
    assert ks.spec.force is False
    assert ks.status.observed_generation == -1
    assert ks.deletion_policy == "MirrorPrune"


@pytest.mark.parametrize(
    "name", [n for n in KUSTOMIZATION_EXAMPLES if n != "kustomization-status.yaml"]
)
async def test_flux_examples_accepted_unchanged(
    kube: Client, namespace: str, installed: list[str], name: str
) -> None:
    obj = example(name, namespace)
    created = await kube.create(obj)
    spec = with_server_defaults(obj["spec"])
    assert created["spec"] == spec
    ks = Kustomization.from_object(created)
    assert ks.to_object()["spec"] == without_false(spec)


async def test_status_written_by_a_controller_parses(
    kube: Client, namespace: str, installed: list[str]
) -> None:
    full = yaml.safe_load((EXAMPLES / "kustomization-status.yaml").read_text())
    obj = example("kustomization-status.yaml", namespace)
    created = await kube.create(obj)
    updated = await kube.patch_status(created, full["status"])
    assert updated["status"] == full["status"]
    ks = Kustomization.from_object(updated)
    assert ks.status.inventory is not None
    assert [e.id for e in ks.status.inventory.entries] == [
        "default_podinfo__Service",
        "default_podinfo_apps_Deployment",
        "default_podinfo_autoscaling_HorizontalPodAutoscaler",
    ]
    assert ks.status.history[1].last_reconciled_status == "HealthCheckFailed"
    # What tidegate writes as status, the server takes back unchanged.
    rewritten = await kube.patch_status(updated, ks.to_object()["status"])
    assert rewritten["status"] == full["status"]


@pytest.mark.parametrize(("spec", "where"), INVALID)
async def test_invalid_objects_rejected(
    kube: Client, namespace: str, installed: list[str], spec: dict[str, Any], where: str
) -> None:
    obj = kustomization(namespace, **spec)
    with pytest.raises(Invalid) as rejected:
        await kube.create(obj)
    assert rejected.value.status == 422
    assert where in rejected.value.message
    with pytest.raises(InvalidObject) as refused:
        Kustomization.from_object(obj)
    assert refused.value.field.startswith(where)


@pytest.mark.parametrize("name", ["interval", "prune", "sourceRef"])
async def test_missing_required_rejected(
    kube: Client, namespace: str, installed: list[str], name: str
) -> None:
    obj = kustomization(namespace)
    del obj["spec"][name]
    with pytest.raises(Invalid, match=rf"spec\.{name}: Required value"):
        await kube.create(obj)
    with pytest.raises(InvalidObject, match=rf"spec\.{name}: required value"):
        Kustomization.from_object(obj)


@pytest.mark.parametrize(
    "kube_config",
    [
        {},
        {"configMapRef": {"name": "remote"}, "secretRef": {"name": "remote-kubeconfig"}},
    ],
)
async def test_kubeconfig_needs_exactly_one_reference(
    kube: Client, namespace: str, installed: list[str], kube_config: dict[str, Any]
) -> None:
    # A CEL rule of Flux's CRD: the server evaluates it, tidegate's parser does not.
    with pytest.raises(Invalid, match=r"exactly one of spec\.kubeConfig\.configMapRef or"):
        await kube.create(kustomization(namespace, kubeConfig=kube_config))
    for accepted in ({"configMapRef": {"name": "remote"}}, {"secretRef": {"name": "remote"}}):
        name = "remote-" + next(iter(accepted)).lower()
        await kube.create(kustomization(namespace, name, kubeConfig=accepted))


async def test_kubectl_gets_it_by_short_name_and_category(
    kube: Client,
    namespace: str,
    installed: list[str],
    tidegate_env: Environment,
    tmp_path: Path,
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")
    created = await kube.create(kustomization(namespace))
    await kube.patch_status(
        created,
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ArtifactFailed",
                    "message": "Source artifact not found, retrying in 30s",
                    "lastTransitionTime": "2025-08-15T11:12:00Z",
                }
            ]
        },
    )
    env = {**os.environ, "KUBECONFIG": str(tidegate_env.kubeconfig)}
    cache = ["--cache-dir", str(tmp_path / "cache")]
    for what in ("ks", "fluxcd-appliers"):
        result = await asyncio.to_thread(
            subprocess.run,
            [kubectl, "get", what, "-n", namespace, *cache],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        header, row = result.stdout.splitlines()
        assert header.split() == ["NAME", "AGE", "READY", "STATUS"]
        name, _age, ready, *status = row.split()
        assert name.endswith("app")  # `kustomization.kustomize.toolkit.fluxcd.io/app` by category
        assert ready == "False"
        assert " ".join(status) == "Source artifact not found, retrying in 30s"
