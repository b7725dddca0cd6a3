"""Take-over of fields owned by kubectl (client-side apply, edit, …) and other disallowed
managers, as Flux's kustomize-controller does before it applies.

Server-side apply only removes a field dropped from the manifest when the applier is its sole
owner. Fields set by `kubectl apply` (client-side), `kubectl edit` or `kubectl create` stay
owned by those managers (operation `Update`), so they would never disappear. Flux rewrites
`metadata.managedFields` with a JSON patch so that these entries become the controller's own
`Apply` entry (merged into it when it exists), and removes kubectl's
`last-applied-configuration` annotation; the next apply then owns, and prunes, those fields.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Operation = Literal["Apply", "Update"]

# Annotations and labels that earlier tools left on objects (kustomize-controller's cleanup).
STALE_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kustomize.toolkit.fluxcd.io/checksum",
    "fluxcd.io/sync-checksum",
)
STALE_LABELS = ("fluxcd.io/sync-gc-mark",)


@dataclass(frozen=True)
class FieldManager:
    """Managed-fields entries to take over: managers whose name starts with `name`, with
    this operation, on the main resource (not a subresource)."""

    name: str
    operation: Operation

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return (
            str(entry.get("manager", "")).startswith(self.name)
            and entry.get("operation") == self.operation
            and not entry.get("subresource")
        )


def takeover_managers(field_manager: str, disallowed: Iterable[str] = ()) -> list[FieldManager]:
    """kustomize-controller's list: `kubectl` apply (server-side with --force-conflicts) and
    update (client-side apply, edit, patch…), `before-first-apply`, the controller's own
    pre-SSA updates, and any `--disallowed-field-managers`."""
    managers = [
        FieldManager("kubectl", "Apply"),
        FieldManager("kubectl", "Update"),
        FieldManager("before-first-apply", "Update"),
        FieldManager(field_manager, "Update"),
    ]
    for name in disallowed:
        managers += [FieldManager(name, "Apply"), FieldManager(name, "Update")]
    return managers


def cleanup_patch(
    live: Mapping[str, Any], managers: Sequence[FieldManager], field_manager: str
) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) that removes stale annotations and labels and hands the
    matching managers' fields to `field_manager`; empty when there is nothing to do."""
    meta = live.get("metadata") or {}
    ops: list[dict[str, Any]] = []
    for key in STALE_ANNOTATIONS:
        if key in (meta.get("annotations") or {}):
            ops.append({"op": "remove", "path": "/metadata/annotations/" + _escape(key)})
    for key in STALE_LABELS:
        if key in (meta.get("labels") or {}):
            ops.append({"op": "remove", "path": "/metadata/labels/" + _escape(key)})
    entries = replace_managers(meta.get("managedFields") or [], managers, field_manager)
    if entries is not None:
        ops.append({"op": "replace", "path": "/metadata/managedFields", "value": entries})
    return ops


def replace_managers(
    entries: Sequence[Mapping[str, Any]], managers: Sequence[FieldManager], field_manager: str
) -> list[dict[str, Any]] | None:
    """The managed-fields list with every matching entry folded into `field_manager`'s Apply
    entry (which is moved to the end), or None when no entry matches (Flux's
    `PatchReplaceFieldsManagers`)."""
    own: dict[str, Any] | None = None
    own_index = -1
    for i, entry in enumerate(entries):
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply":
            own, own_index = copy.deepcopy(dict(entry)), i
    kept: list[dict[str, Any]] = []
    edited = False
    for i, entry in enumerate(entries):
        if i == own_index:
            continue
        if not any(manager.matches(entry) for manager in managers):
            kept.append(copy.deepcopy(dict(entry)))
            continue
        edited = True
        if own is None:
            own = copy.deepcopy(dict(entry))
            own["manager"], own["operation"] = field_manager, "Apply"
        else:
            own["fieldsV1"] = merge_fields(own.get("fieldsV1") or {}, entry.get("fieldsV1") or {})
    if not edited or own is None:
        return None
    return [*kept, own]


def merge_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The union of two `fieldsV1` sets. A set is a trie of `f:`/`k:`/`v:`/`i:` path
    elements (`.` marks the node itself), so the union is a deep merge of the dicts."""
    out = copy.deepcopy(dict(a))
    for key, value in b.items():
        if isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = merge_fields(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _escape(key: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
