"""EventRecorder against the real API server: the Event's fields and client-go-style
aggregation of repeats."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tidegate.kube import Client
from tidegate.runtime import EventRecorder

from .support import configmap

pytestmark = pytest.mark.cluster


async def events_about(kube: Client, obj: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    uid = obj["metadata"]["uid"]
    listed = await kube.list("v1", "Event", namespace, field_selector=f"involvedObject.uid={uid}")
    return sorted(listed["items"], key=lambda e: e["metadata"]["creationTimestamp"])


async def test_event_carries_object_source_and_annotations(kube: Client, namespace: str) -> None:
    obj = await kube.apply(configmap(namespace, "app", v="1"), field_manager="t")
    recorder = EventRecorder(kube, "test-controller", host="node-1")
    await recorder.record(
        obj,
        "Normal",
        "ReconciliationSucceeded",
        "applied revision v1",
        annotations={"example.com/revision": "v1@sha256:abc"},
        action="Reconcile",
    )
    [event] = await events_about(kube, obj, namespace)
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "app",
        "namespace": namespace,
        "uid": obj["metadata"]["uid"],
        "resourceVersion": obj["metadata"]["resourceVersion"],
    }
    assert event["type"] == "Normal"
    assert event["reason"] == "ReconciliationSucceeded"
    assert event["message"] == "applied revision v1"
    assert event["source"] == {"component": "test-controller", "host": "node-1"}
    assert event["reportingComponent"] == "test-controller"
    assert event["reportingInstance"] == "node-1"
    assert event["action"] == "Reconcile"
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert event["metadata"]["annotations"] == {"example.com/revision": "v1@sha256:abc"}
    assert event["metadata"]["name"].startswith("app.")


async def test_identical_events_are_aggregated(kube: Client, namespace: str) -> None:
    obj = await kube.apply(configmap(namespace, "app", v="1"), field_manager="t")
    recorder = EventRecorder(kube, "test-controller")
    await recorder.record(obj, "Warning", "Failed", "boom")
    await recorder.record(obj, "Warning", "Failed", "boom")
    [event] = await events_about(kube, obj, namespace)
    assert event["count"] == 2
    assert event["lastTimestamp"] >= event["firstTimestamp"]

    # A different message, reason or type is a new event.
    await recorder.record(obj, "Warning", "Failed", "another boom")
    await recorder.record(obj, "Normal", "Failed", "boom")
    await recorder.record(obj, "Warning", "Failed", "boom")
    events = await events_about(kube, obj, namespace)
    assert sorted((e["type"], e["message"], e["count"]) for e in events) == [
        ("Normal", "boom", 1),
        ("Warning", "another boom", 1),
        ("Warning", "boom", 3),
    ]


async def test_an_expired_aggregate_is_created_anew(kube: Client, namespace: str) -> None:
    obj = await kube.apply(configmap(namespace, "app", v="1"), field_manager="t")
    recorder = EventRecorder(kube, "test-controller")
    await recorder.record(obj, "Normal", "Progressing", "working")
    [first] = await events_about(kube, obj, namespace)
    # The API server drops events after their TTL; the next repeat must not be lost.
    await kube.delete("v1", "Event", first["metadata"]["name"], namespace)
    await recorder.record(obj, "Normal", "Progressing", "working")
    [second] = await events_about(kube, obj, namespace)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1


async def test_long_messages_are_truncated(kube: Client, namespace: str) -> None:
    obj = await kube.apply(configmap(namespace, "app", v="1"), field_manager="t")
    await EventRecorder(kube, "c").record(obj, "Warning", "Failed", "x" * 5000)
    [event] = await events_about(kube, obj, namespace)
    assert len(event["message"]) == 1024
    assert event["message"].startswith("xxx")


async def test_cluster_scoped_objects_get_events_in_default(kube: Client, namespace: str) -> None:
    obj = await kube.get("v1", "Namespace", namespace)
    await EventRecorder(kube, "c").record(obj, "Normal", "Seen", f"namespace {namespace}")
    [event] = await events_about(kube, obj, "default")
    assert event["involvedObject"]["kind"] == "Namespace"
    assert "namespace" not in event["involvedObject"]


async def test_failures_are_logged_not_raised(
    kube: Client, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    ghost = configmap("no-such-namespace-here", "app", v="1")
    ghost["metadata"]["uid"] = "0000"
    recorder = EventRecorder(kube, "c")
    with caplog.at_level(logging.ERROR, logger="tidegate.runtime"):
        await recorder.record(ghost, "Normal", "Seen", "hello")
        await recorder.record(ghost, "Sideways", "Seen", "hello")
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed to record event Seen for ConfigMap 'app'" in m for m in messages)
    assert any("Normal or Warning" in m for m in messages)
