"""CustomResourceDefinitions generated from the models."""

from __future__ import annotations

from typing import Any

import yaml

from ._kustomization import Kustomization
from ._ocirepository import OCIRepository
from ._resource import Resource

# Every kind tidegate serves, in the order `crds()` lists their CRDs.
KINDS: tuple[type[Resource], ...] = (OCIRepository, Kustomization)

CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"

_ANNOTATIONS = {
    # As on Flux's CRDs: when the CRDs themselves are applied by a Kustomization with
    # post-build substitution, `${...}` in their descriptions must be left alone.
    "kustomize.toolkit.fluxcd.io/substitute": "disabled",
}
_LABELS = {"app.kubernetes.io/part-of": "tidegate"}


def custom_resource_definition(kind: type[Resource]) -> dict[str, Any]:
    """The CRD of one kind: names, scope, the served (and stored) version with its schema,
    printer columns and the status subresource."""
    info = kind.info
    names: dict[str, Any] = {
        "kind": info.kind,
        "listKind": info.list_kind,
        "plural": info.plural,
        "singular": info.singular or info.kind.lower(),
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    version: dict[str, Any] = {
        "name": info.version,
        "schema": {"openAPIV3Schema": kind.openapi_schema()},
        "served": True,
        "storage": True,
    }
    if info.printer_columns:
        version["additionalPrinterColumns"] = [c.to_crd() for c in info.printer_columns]
    if info.status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": CRD_KIND,
        "metadata": {
            "name": info.crd_name,
            "annotations": dict(_ANNOTATIONS),
            "labels": dict(_LABELS),
        },
        "spec": {
            "group": info.group,
            "names": names,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [version],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The CRDs of every kind tidegate knows, as plain dicts."""
    return [custom_resource_definition(kind) for kind in KINDS]


def crds_yaml() -> str:
    """All CRDs as one YAML stream, each document starting with `---`; same text every time."""
    return yaml.dump_all(
        crds(),
        Dumper=_Dumper,
        explicit_start=True,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text, and no anchors for repeated sub-schemas."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
