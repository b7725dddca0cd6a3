"""Parsing objects into typed models (defaults applied, bad values named), and the way back."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from tidegate.api import (
    Artifact,
    Condition,
    Duration,
    InvalidObject,
    LocalObjectReference,
    Model,
    OCIRepository,
    OCIRepositorySpec,
    Rule,
    field,
)

EXAMPLES = Path(__file__).parent / "testdata" / "examples"


def example(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return obj


def minimal(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {"url": "oci://ghcr.io/org/app", "interval": "5m", **spec},
    }


def test_flux_example_parses() -> None:
    repo = OCIRepository.from_object(example("podinfo.yaml"))
    assert repo.key == "default/podinfo"
    assert repo.metadata.name == "podinfo"
    spec = repo.spec
    assert spec.url == "oci://ghcr.io/stefanprodan/manifests/podinfo"
    assert spec.interval == 300.0
    assert spec.interval.text == "5m0s"
    assert spec.ref is not None
    assert spec.ref.tag == "latest"
    # Defaults the API server would have filled in are applied.
    assert spec.timeout == 60.0
    assert spec.timeout.text == "60s"
    assert spec.provider == "generic"
    assert spec.insecure is False
    assert spec.suspend is False
    assert spec.verify is None
    assert spec.ignore is None
    assert repo.status.observed_generation == -1
    assert repo.status.conditions == ()
    assert repo.status.artifact is None


def test_keyless_and_layer_selector_examples_parse() -> None:
    keyless = OCIRepository.from_object(example("podinfo-keyless.yaml")).spec
    assert keyless.ref is not None
    assert keyless.ref.semver == "6.x"
    assert keyless.verify is not None
    assert keyless.verify.provider == "cosign"
    (identity,) = keyless.verify.match_oidc_identity
    assert identity.issuer == "^https://token.actions.githubusercontent.com$"
    assert identity.subject == "^https://github.com/stefanprodan/podinfo.*$"

    chart = OCIRepository.from_object(example("helm-chart.yaml")).spec
    assert chart.layer_selector is not None
    assert chart.layer_selector.media_type == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    assert chart.layer_selector.operation == "copy"

    private = OCIRepository.from_object(example("private-registry.yaml")).spec
    assert private.interval == 5400.0
    assert private.timeout == 90.0
    assert private.provider == "aws"
    assert private.secret_ref == LocalObjectReference(name="regcred")
    assert private.cert_secret_ref == LocalObjectReference(name="registry-tls")
    assert private.proxy_secret_ref == LocalObjectReference(name="squid")
    assert private.service_account_name == "podinfo-puller"
    assert private.ignore is not None
    assert private.ignore.startswith("# exclude all\n/*\n")


@pytest.mark.parametrize(
    "name", ["podinfo.yaml", "podinfo-keyless.yaml", "helm-chart.yaml", "private-registry.yaml"]
)
def test_to_object_gives_back_what_was_parsed(name: str) -> None:
    obj = example(name)
    repo = OCIRepository.from_object(obj)
    again = repo.to_object()
    # The defaults become explicit, as on the API server; all else is as written.
    spec = {"provider": "generic", "timeout": "60s", **obj["spec"]}
    spec.pop("suspend", None)  # false is Go's omitempty zero value
    assert again == {**obj, "spec": spec, "status": {"observedGeneration": -1}}
    assert OCIRepository.from_object(again) == repo


def test_status_parses() -> None:
    obj = minimal()
    obj["metadata"].update(generation=3, creationTimestamp="2024-05-01T10:00:00Z")
    obj["status"] = {
        "observedGeneration": 3,
        "lastHandledReconcileAt": "2024-05-01T10:05:00Z",
        "url": "http://source-controller/ocirepository/apps/app/latest.tar.gz",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 3,
                "lastTransitionTime": "2024-05-01T10:01:02Z",
                "reason": "Succeeded",
                "message": "stored artifact for digest 'latest@sha256:ab'",
            }
        ],
        "artifact": {
            "path": "ocirepository/apps/app/sha256:ab.tar.gz",
            "url": "http://source-controller/ocirepository/apps/app/sha256:ab.tar.gz",
            "revision": "latest@sha256:ab",
            "digest": "sha256:cd",
            "lastUpdateTime": "2024-05-01T10:01:02Z",
            "size": 1024,
            "metadata": {"org.opencontainers.image.revision": "main@sha1:12"},
        },
        "observedLayerSelector": {"mediaType": "application/x-tar", "operation": "extract"},
    }
    repo = OCIRepository.from_object(obj)
    assert repo.metadata.generation == 3
    assert repo.metadata.creation_timestamp == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    status = repo.status
    assert status.last_handled_reconcile_at == "2024-05-01T10:05:00Z"
    (ready,) = status.conditions
    assert ready == Condition(
        type="Ready",
        status="True",
        observed_generation=3,
        last_transition_time=dt.datetime(2024, 5, 1, 10, 1, 2, tzinfo=dt.UTC),
        reason="Succeeded",
        message="stored artifact for digest 'latest@sha256:ab'",
    )
    assert isinstance(status.artifact, Artifact)
    assert status.artifact.size == 1024
    assert status.artifact.metadata == {"org.opencontainers.image.revision": "main@sha1:12"}
    assert status.observed_layer_selector is not None
    assert status.observed_layer_selector.operation == "extract"
    assert repo.to_object()["status"] == obj["status"]


@pytest.mark.parametrize(
    ("spec", "field", "detail"),
    [
        ({"url": "ghcr.io/org/app"}, "spec.url", "should match '^oci://.*$'"),
        ({"interval": "5 minutes"}, "spec.interval", "should match"),
        ({"interval": 300}, "spec.interval", "must be a duration string, not integer"),
        ({"timeout": "1h"}, "spec.timeout", r"should match '^([0-9]+(\.[0-9]+)?(ms|s|m))+$'"),
        ({"provider": "docker"}, "spec.provider", 'unsupported value "docker"'),
        (
            {"layerSelector": {"operation": "unpack"}},
            "spec.layerSelector.operation",
            'unsupported value "unpack": supported values: "extract", "copy"',
        ),
        ({"ref": {"tag": 1}}, "spec.ref.tag", "must be a string, not integer"),
        ({"ref": "latest"}, "spec.ref", "must be an object, not string"),
        ({"secretRef": {}}, "spec.secretRef.name", "required value"),
        ({"insecure": "yes"}, "spec.insecure", "must be a boolean, not string"),
        (
            {"verify": {"matchOIDCIdentity": [{"issuer": "x"}]}},
            "spec.verify.matchOIDCIdentity[0].subject",
            "required value",
        ),
        (
            {"verify": {"matchOIDCIdentity": {}}},
            "spec.verify.matchOIDCIdentity",
            "must be an array",
        ),
    ],
)
def test_invalid_values_are_named(spec: dict[str, Any], field: str, detail: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        OCIRepository.from_object(minimal(**spec))
    error = caught.value
    assert error.field == field
    assert detail in error.detail
    assert str(error).startswith(f"invalid OCIRepository 'apps/app': {field}: ")


def test_missing_required_fields() -> None:
    obj = minimal()
    del obj["spec"]["interval"]
    with pytest.raises(InvalidObject, match=r"spec\.interval: required value"):
        OCIRepository.from_object(obj)
    # The API server accepts an object without spec (spec is not required); it still is not
    # something a controller can act on.
    with pytest.raises(InvalidObject, match=r"spec\.url: required value"):
        OCIRepository.from_object({"kind": "OCIRepository", "metadata": {"name": "x"}})


def test_kind_and_version_are_checked() -> None:
    with pytest.raises(InvalidObject, match="expected 'OCIRepository', got 'GitRepository'"):
        OCIRepository.from_object({**minimal(), "kind": "GitRepository"})
    unsupported = re.escape("unsupported version 'source.toolkit.fluxcd.io/v2'")
    with pytest.raises(InvalidObject, match=unsupported):
        OCIRepository.from_object({**minimal(), "apiVersion": "source.toolkit.fluxcd.io/v2"})


def test_built_in_python() -> None:
    repo = OCIRepository(
        spec=OCIRepositorySpec(url="oci://ghcr.io/org/app", interval=Duration("10m")),
    )
    assert repo.api_version == "source.toolkit.fluxcd.io/v1"
    assert repo.kind == "OCIRepository"
    assert repo.spec.timeout == 60
    assert repo.to_object() == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {},
        "spec": {
            "url": "oci://ghcr.io/org/app",
            "interval": "10m",
            "provider": "generic",
            "timeout": "60s",
        },
        "status": {"observedGeneration": -1},
    }


# -- the model layer on its own, with a kind of its own ---------------------------------------


class Port(Model):
    """A port to open."""

    name: str = field(max_length=15, description="Name of the port.")
    number: int = field(minimum=1, maximum=65535, description="Port number.")
    protocol: Literal["TCP", "UDP"] = field(default="TCP", schema_default=True)


class Widget(Model, validations=[Rule("self.replicas <= 10", message="too many replicas")]):
    """A widget, for the model layer's own tests."""

    replicas: int = field(default=1, format="int32")
    ratio: float | None = None
    ports: list[Port] = field(
        default_factory=list, list_type="map", list_map_keys=["name"], max_items=4
    )
    labels: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict, description="Free-form values.")
    patch: Any = field(default=None, description="Any JSON.")
    tags: tuple[str, ...] = field(default=(), list_type="set", min_items=1)
    keep: bool = field(default=False, omit_empty=False)
    owner: str = field(default="", json="ownerID", extra={"x-kubernetes-immutable": True})


def test_model_schema() -> None:
    schema = Widget.openapi_schema()
    props = schema["properties"]
    assert schema["description"] == "A widget, for the model layer's own tests."
    assert schema["x-kubernetes-validations"] == [
        {"message": "too many replicas", "rule": "self.replicas <= 10"}
    ]
    assert "required" not in schema
    assert props["replicas"] == {"format": "int32", "type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["ports"] == {
        "items": {
            "description": "A port to open.",
            "properties": {
                "name": {"description": "Name of the port.", "maxLength": 15, "type": "string"},
                "number": {
                    "description": "Port number.",
                    "format": "int64",
                    "maximum": 65535,
                    "minimum": 1,
                    "type": "integer",
                },
                "protocol": {"default": "TCP", "enum": ["TCP", "UDP"], "type": "string"},
            },
            "required": ["name", "number"],
            "type": "object",
        },
        "maxItems": 4,
        "type": "array",
        "x-kubernetes-list-map-keys": ["name"],
        "x-kubernetes-list-type": "map",
    }
    assert props["labels"] == {"additionalProperties": {"type": "string"}, "type": "object"}
    assert props["values"] == {
        "description": "Free-form values.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert props["patch"] == {
        "description": "Any JSON.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert props["tags"] == {
        "items": {"type": "string"},
        "minItems": 1,
        "type": "array",
        "x-kubernetes-list-type": "set",
    }
    assert props["ownerID"] == {"type": "string", "x-kubernetes-immutable": True}


def test_model_parse_and_dump() -> None:
    widget = Widget.from_dict(
        {
            "replicas": 3,
            "ratio": 2,
            "ports": [{"name": "http", "number": 80}],
            "values": {"a": [1, {"b": None}]},
            "patch": [{"op": "add"}],
            "tags": ["x"],
            "unknown": "ignored",
        }
    )
    assert widget.ratio == 2.0
    assert widget.ports == [Port(name="http", number=80, protocol="TCP")]
    assert widget.values == {"a": [1, {"b": None}]}
    assert widget.tags == ("x",)
    assert widget.to_dict() == {
        "replicas": 3,
        "ratio": 2.0,
        "ports": [{"name": "http", "number": 80, "protocol": "TCP"}],
        "values": {"a": [1, {"b": None}]},
        "patch": [{"op": "add"}],
        "tags": ["x"],
        "keep": False,
    }
    bad = [
        ({"ports": [{"name": "http", "number": 0}]}, "ports[0].number", "should be >= 1"),
        ({"ports": [{"name": "h" * 16, "number": 1}]}, "ports[0].name", "at most 15 chars"),
        ({"ports": [{"name": "a", "number": 1, "protocol": "SCTP"}]}, "ports[0].protocol", "SCTP"),
        ({"ports": [{"name": str(i), "number": 1} for i in range(5)]}, "ports", "at most 4"),
        ({"tags": []}, "tags", "at least 1 items"),
        ({"replicas": True}, "replicas", "must be an integer, not boolean"),
        ({"labels": {"a": 1}}, "labels.a", "must be a string"),
    ]
    for data, where, detail in bad:
        with pytest.raises(InvalidObject) as caught:
            Widget.from_dict(data)
        assert (caught.value.field, str(caught.value)) == (where, f"{where}: {caught.value.detail}")
        assert detail in caught.value.detail, (data, caught.value.detail)
