"""The generated CRDs on a real API server: established, defaulting, validating and explained
the way Flux's CRDs are; tidegate's parser agrees with the server on what is invalid."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate import api
from tidegate.api import (
    Duration,
    InstallError,
    InvalidObject,
    Model,
    OCIRepository,
    Resource,
    ResourceInfo,
    Rule,
    field,
)
from tidegate.kube import Client, Invalid, NotFound
from tidegate.testing import Environment

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).parent / "testdata" / "examples"
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
API_VERSION = "source.toolkit.fluxcd.io/v1"


@pytest.fixture
async def installed(kube: Client) -> list[str]:
    return await api.install_crds(kube, timeout=60)


def ocirepository(namespace: str, name: str = "app", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": "oci://ghcr.io/org/app", "interval": "5m", **spec},
    }


def example(name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    obj["metadata"]["namespace"] = namespace
    return obj


async def test_crd_becomes_established(kube: Client, installed: list[str]) -> None:
    assert sorted(installed) == [
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "ocirepositories.source.toolkit.fluxcd.io",
    ]
    crd = await kube.get(*CRD, "ocirepositories.source.toolkit.fluxcd.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["ocirepo"]
    assert crd["status"]["storedVersions"] == ["v1"]
    # Installing again changes nothing and is as quick.
    assert await api.install_crds(kube, timeout=60) == installed
    assert (await kube.get(*CRD, installed[0]))["metadata"]["generation"] == crd["metadata"][
        "generation"
    ]


async def test_defaults_applied_on_create(
    kube: Client, namespace: str, installed: list[str]
) -> None:
    created = await kube.create(
        ocirepository(namespace, verify={"secretRef": {"name": "cosign-pub"}})
    )
    assert created["spec"]["timeout"] == "60s"
    assert created["spec"]["provider"] == "generic"
    assert created["spec"]["verify"]["provider"] == "cosign"
    stored = await kube.get(API_VERSION, "OCIRepository", "app", namespace)
    assert stored["status"] == {"observedGeneration": -1}
    repo = OCIRepository.from_object(stored)
    assert repo.metadata.generation == 1
    assert repo.metadata.uid == stored["metadata"]["uid"]
    assert repo.spec.timeout == 60.0
    assert repo.spec.interval == 300.0
    assert repo.spec.provider == "generic"
    assert repo.status.observed_generation == -1


@pytest.mark.parametrize(
    "name", ["podinfo.yaml", "podinfo-keyless.yaml", "helm-chart.yaml", "private-registry.yaml"]
)
async def test_flux_examples_accepted_unchanged(
    kube: Client, namespace: str, installed: list[str], name: str
) -> None:
    obj = example(name, namespace)
    created = await kube.create(obj)
    spec = {"provider": "generic", "timeout": "60s", **obj["spec"]}
    assert created["spec"] == spec
    # What the server stored parses, and gives back the same spec.
    repo = OCIRepository.from_object(created)
    assert repo.to_object()["spec"] == {k: v for k, v in spec.items() if v is not False}


INVALID = [
    ({"url": "ghcr.io/org/app"}, "spec.url"),
    ({"interval": "5 minutes"}, "spec.interval"),
    ({"interval": "1d"}, "spec.interval"),
    ({"timeout": "1h"}, "spec.timeout"),
    ({"layerSelector": {"operation": "unpack"}}, "spec.layerSelector.operation"),
    ({"provider": "docker"}, "spec.provider"),
    ({"verify": {"provider": "gpg"}}, "spec.verify.provider"),
    ({"secretRef": {}}, "spec.secretRef.name"),
    ({"verify": {"matchOIDCIdentity": [{"issuer": "^x$"}]}}, "spec.verify.matchOIDCIdentity[0]"),
    ({"insecure": "yes"}, "spec.insecure"),
]


@pytest.mark.parametrize(("spec", "where"), INVALID)
async def test_invalid_objects_rejected(
    kube: Client, namespace: str, installed: list[str], spec: dict[str, Any], where: str
) -> None:
    obj = ocirepository(namespace, **spec)
    with pytest.raises(Invalid) as rejected:
        await kube.create(obj)
    assert rejected.value.status == 422
    assert where in rejected.value.message
    # tidegate's parser refuses the same object, naming the same field.
    with pytest.raises(InvalidObject) as refused:
        OCIRepository.from_object(obj)
    assert refused.value.field.startswith(where)


async def test_missing_required_rejected(
    kube: Client, namespace: str, installed: list[str]
) -> None:
    obj = ocirepository(namespace)
    del obj["spec"]["interval"]
    with pytest.raises(Invalid, match=r"spec\.interval: Required value"):
        await kube.create(obj)
    with pytest.raises(InvalidObject, match=r"spec\.interval: required value"):
        OCIRepository.from_object(obj)


async def openapi_v3(kube: Client, group_version: str) -> dict[str, Any]:
    """The API server's published OpenAPI v3 document of one group/version."""
    root = await kube.request("GET", "/openapi/v3")
    entry = root["paths"][f"apis/{group_version}"]
    return await kube.request("GET", entry["serverRelativeURL"])


async def published_schema(kube: Client) -> dict[str, Any]:
    # Publication follows the CRD by a moment: wait for the schema tidegate generates.
    wanted = OCIRepository.openapi_schema()["properties"]["spec"]["properties"]["ref"]
    for _ in range(100):
        try:
            document = await openapi_v3(kube, API_VERSION)
        except KeyError:
            document = {}
        schema: dict[str, Any] = (
            document.get("components", {})
            .get("schemas", {})
            .get("io.fluxcd.toolkit.source.v1.OCIRepository", {})
        )
        if schema.get("properties", {}).get("spec", {}).get("properties", {}).get("ref") == wanted:
            return schema
        await asyncio.sleep(0.2)
    raise AssertionError("the OCIRepository schema was not published in /openapi/v3")


async def test_openapi_v3_publishes_the_schema(kube: Client, installed: list[str]) -> None:
    schema = await published_schema(kube)
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "source.toolkit.fluxcd.io", "kind": "OCIRepository", "version": "v1"}
    ]
    spec = schema["properties"]["spec"]
    assert set(spec["properties"]["ref"]["properties"]) == {
        "digest",
        "semver",
        "semverFilter",
        "tag",
    }
    assert spec["properties"]["ref"]["description"]
    assert spec["required"] == ["interval", "url"]
    assert spec["properties"]["provider"]["default"] == "generic"
    assert spec["properties"]["timeout"]["default"] == "60s"
    assert spec["properties"]["url"]["pattern"] == "^oci://.*$"
    assert spec["properties"]["layerSelector"]["properties"]["operation"]["enum"] == [
        "extract",
        "copy",
    ]


async def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60
    )


async def test_kubectl_explain(
    kube: Client, installed: list[str], tidegate_env: Environment, tmp_path: Path
) -> None:
    await published_schema(kube)  # the same facts, checked without kubectl
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH; /openapi/v3 carried the same facts")
    env = {**os.environ, "KUBECONFIG": str(tidegate_env.kubeconfig)}
    explain = [kubectl, "explain", "ocirepository.spec.ref", f"--api-version={API_VERSION}"]
    explain += ["--cache-dir", str(tmp_path / "cache")]
    result = await run(explain, env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "KIND:       OCIRepository" in out
    assert "VERSION:    v1" in out
    assert "FIELD: ref <Object>" in out
    for name in ("digest", "semver", "semverFilter", "tag"):
        assert f"  {name}\t<string>" in out
    ref = OCIRepository.openapi_schema()["properties"]["spec"]["properties"]["ref"]
    assert ref["description"] in " ".join(out.split())
    short = await run(
        [kubectl, "explain", "ocirepo.spec.provider", "--cache-dir", str(tmp_path / "cache")], env
    )
    assert short.returncode == 0, short.stderr
    enum = short.stdout.split("ENUM:")[1].split("DESCRIPTION:")[0].split()
    assert enum == ["generic", "aws", "azure", "gcp"]


# -- the model layer serves kinds of its own: CEL rules, names, failures ---------------------

GROUP = f"t{secrets.token_hex(4)}.tidegate.test"


class GadgetSpec(
    Model,
    validations=[Rule("!has(self.high) || self.low <= self.high", message="low exceeds high")],
):
    """What a gadget should be."""

    low: int = field(default=0, minimum=0)
    high: int = field(default=10)
    every: Duration = field(default=Duration("1m"), schema_default=True)


class Gadget(Resource):
    """A kind only tests know."""

    info = ResourceInfo(group=GROUP, version="v1", kind="Gadget", plural="gadgets")
    spec: GadgetSpec = field(required=False)


@pytest.fixture
async def scratch_crds(kube: Client) -> AsyncIterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(NotFound):
            await kube.delete(*CRD, name)


async def test_cel_rules_and_defaults_of_another_kind(
    kube: Client, namespace: str, scratch_crds: list[str]
) -> None:
    crd = api.custom_resource_definition(Gadget)
    scratch_crds.append(crd["metadata"]["name"])
    assert await api.install_crds(kube, [crd], timeout=60) == [f"gadgets.{GROUP}"]
    gadget = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "namespace": namespace},
        "spec": {"low": 5},
    }
    created = await kube.create(gadget)
    assert created["spec"] == {"low": 5, "every": "1m"}  # a default only where the schema has one
    parsed = Gadget.from_object(created)
    assert (parsed.spec.low, parsed.spec.high, parsed.spec.every) == (5, 10, 60.0)
    broken = copy.deepcopy(gadget)
    broken["metadata"]["name"] = "h"
    broken["spec"] = {"low": 5, "high": 1}
    with pytest.raises(Invalid, match="low exceeds high"):
        await kube.create(broken)


async def test_install_reports_names_not_accepted(kube: Client, scratch_crds: list[str]) -> None:
    first = api.custom_resource_definition(Gadget)
    first["metadata"]["name"] = f"sprockets.{GROUP}"
    first["spec"]["names"].update(kind="Sprocket", listKind="SprocketList", plural="sprockets",
                                  singular="sprocket")  # fmt: skip
    clash = copy.deepcopy(first)
    clash["metadata"]["name"] = f"cogs.{GROUP}"
    clash["spec"]["names"].update(plural="cogs", singular="cog")  # kind Sprocket again
    scratch_crds.extend([first["metadata"]["name"], clash["metadata"]["name"]])
    await api.install_crds(kube, [first], timeout=60)
    with pytest.raises(InstallError, match=f"'cogs.{GROUP}' not established: names not accepted"):
        await api.install_crds(kube, [clash], timeout=60)


async def test_install_reports_a_refused_crd(kube: Client) -> None:
    crd = api.custom_resource_definition(Gadget)
    crd["metadata"]["name"] = f"wrong.{GROUP}"  # must be <plural>.<group>
    with pytest.raises(
        InstallError, match=f"failed to apply CustomResourceDefinition 'wrong.{GROUP}'"
    ):
        await api.install_crds(kube, [crd], timeout=60)
