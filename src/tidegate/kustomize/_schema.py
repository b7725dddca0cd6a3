"""What kustomize knows of Kubernetes list fields: their merge keys and patch strategies.

The facts come from `data/merge_keys.json`, written by `scripts/extract_merge_keys.py` from the
OpenAPI document kustomize v5.5.0 embeds (Kubernetes v1.21.2): kustomize merges with that document,
whatever the cluster serves, so fields added since (`schedulingGates`, `resourceClaims`...) are
replaced as lists there, and here. Kinds the document lacks (custom resources) have no schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

Node = dict[str, Any]


class FieldSchema:
    """The schema of one field as kyaml's walker sees it: where its children and elements are,
    and, for lists, the patch strategy and merge keys."""

    __slots__ = ("_definitions", "_node")

    def __init__(self, node: Node, definitions: dict[str, Node]) -> None:
        self._node = node
        self._definitions = definitions

    def field(self, name: str) -> FieldSchema | None:
        """A named field, or the value schema of a map; None where kustomize has no schema."""
        child = self._node.get("p", {}).get(name) or self._node.get("a")
        return self._resolve(child)

    def elements(self) -> FieldSchema | None:
        """The schema of a list's elements."""
        return self._resolve(self._node.get("i"))

    @property
    def strategy(self) -> str:
        """`x-kubernetes-patch-strategy`: "merge", "retainKeys", "merge,retainKeys" or ""."""
        return str(self._node.get("s", ""))

    @property
    def merge_keys(self) -> tuple[str, ...]:
        """`x-kubernetes-list-map-keys` when the field has them, else the patch merge key.
        Empty for lists of primitives merged as sets (`finalizers`)."""
        return tuple(self._node.get("k", ()))

    @property
    def merges(self) -> bool:
        """True when the list merges by key instead of being replaced (any strategy "merge")."""
        return "merge" in self.strategy.split(",")

    def _resolve(self, node: Node | None) -> FieldSchema | None:
        if node is None:
            return None
        ref = node.get("r")
        if ref is not None:
            node = self._definitions.get(ref)
            if node is None:
                return None
        return FieldSchema(node, self._definitions)


@cache
def _data() -> dict[str, Any]:
    text = resources.files("tidegate.kustomize").joinpath("data/merge_keys.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def schema_for(api_version: str, kind: str) -> FieldSchema | None:
    """The schema of a kind, None for kinds kustomize has no schema of (custom resources)."""
    data = _data()
    name = data["kinds"].get(api_version, {}).get(kind)
    if name is None:
        return None
    return FieldSchema(data["definitions"][name], data["definitions"])


def patch_strategy(api_version: str, kind: str, path: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Patch strategy and merge keys of the field at `path` (field names, `[]` for the elements
    of a list), ("", ()) when the field has none or is unknown."""
    schema = schema_for(api_version, kind)
    for part in path:
        if schema is None:
            break
        schema = schema.elements() if part == "[]" else schema.field(part)
    if schema is None:
        return "", ()
    return schema.strategy, schema.merge_keys
