"""Predicates on object pairs as the informer delivers them."""

from __future__ import annotations

import copy
from typing import Any

from tidegate.runtime import Request, any_change, changed

ANNOTATION = "example.com/requestedAt"


def widget(**meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "namespace": "ns",
            "generation": 1,
            "resourceVersion": "1",
            **meta,
        },
        "spec": {"size": 1},
        "status": {"phase": "Pending"},
    }


def test_changed_ignores_status_and_bookkeeping_updates() -> None:
    predicate = changed(annotations=[ANNOTATION])
    old = widget()
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Ready"}
    new["metadata"]["resourceVersion"] = "2"
    new["metadata"]["managedFields"] = [{"manager": "someone"}]
    new["metadata"]["labels"] = {"team": "a"}
    new["metadata"]["annotations"] = {"unrelated": "x"}
    new["metadata"]["finalizers"] = ["example.com/cleanup"]  # a reconciler's own write
    assert predicate(old, new) is False


def test_changed_fires_on_what_a_reconciler_acts_on() -> None:
    predicate = changed(annotations=[ANNOTATION])
    old = widget(annotations={ANNOTATION: "1"})
    assert predicate(None, old) is True
    cases = {
        "generation": {"generation": 2},
        "annotation changed": {"annotations": {ANNOTATION: "2"}},
        "annotation removed": {"annotations": {}},
        "deletion": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
    }
    for case, meta in cases.items():
        new = copy.deepcopy(old)
        new["metadata"].update(meta)
        assert predicate(old, new) is True, case
    # Without the annotation in the list, changing it does not count.
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {ANNOTATION: "2"}
    assert changed()(old, new) is False


def test_changed_compares_content_of_kinds_without_generation() -> None:
    old = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    touched = copy.deepcopy(old)
    touched["metadata"]["resourceVersion"] = "9"
    edited = copy.deepcopy(old)
    edited["data"] = {"a": "2"}
    assert changed()(old, touched) is False
    assert changed()(old, edited) is True


def test_any_change() -> None:
    assert any_change(widget(), widget()) is True


def test_request_of_an_object() -> None:
    assert Request.of(widget()) == Request("ns", "w")
    assert str(Request.of(widget())) == "ns/w"
    cluster_scoped = {"metadata": {"name": "node-1"}}
    assert Request.of(cluster_scoped) == Request(None, "node-1")
    assert str(Request.of(cluster_scoped)) == "node-1"
    assert len({Request("ns", "w"), Request.of(widget())}) == 1
