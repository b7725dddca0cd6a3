"""Predicates: which changes of an object are worth a reconcile."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tidegate.kube import Object

Predicate = Callable[[Object | None, Object | None], bool]
"""`predicate(old, new)`: True to enqueue the change (old is None for a new object)."""

# Top-level fields that never carry desired state.
_NOT_DESIRED_STATE = frozenset({"metadata", "status"})


def any_change(old: Object | None, new: Object | None) -> bool:
    """Every change is worth a reconcile."""
    return True


def changed(*, annotations: Sequence[str] = ()) -> Predicate:
    """True for a new object and for changes a reconciler must act on: `metadata.generation`,
    any of `annotations`, or a deletion starting. Status-only updates and other writes that do
    not change the desired state (resourceVersion, managedFields, labels, finalizers) are
    False — a reconciler adding its own finalizer does not cause another run.

    Kinds without `metadata.generation` (ConfigMaps, Secrets) have their content compared
    instead: every top-level field but metadata and status.
    """
    watched = tuple(annotations)

    def predicate(old: Object | None, new: Object | None) -> bool:
        if old is None or new is None:
            return True
        old_meta: Mapping[str, Any] = old.get("metadata") or {}
        new_meta: Mapping[str, Any] = new.get("metadata") or {}
        if old_meta.get("generation") != new_meta.get("generation"):
            return True
        if new_meta.get("generation") is None and _content(old) != _content(new):
            return True
        old_annotations = old_meta.get("annotations") or {}
        new_annotations = new_meta.get("annotations") or {}
        if any(old_annotations.get(a) != new_annotations.get(a) for a in watched):
            return True
        return bool(new_meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"))

    return predicate


def _content(obj: Object) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_DESIRED_STATE}
