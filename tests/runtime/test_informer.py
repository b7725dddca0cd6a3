"""Informer and InformerSet against the real API server."""

from __future__ import annotations

import asyncio
import copy
import logging
import secrets
from typing import Any

import pytest

from tidegate.kube import Client
from tidegate.runtime import Informer, InformerSet

from .support import WIDGET_CRD, configmap, eventually, running, widget

pytestmark = pytest.mark.cluster

Event = tuple[str, Any, Any]


def recorder(events: list[Event]) -> Any:
    def handler(event_type: str, old: Any, new: Any) -> None:
        events.append((event_type, old, new))

    return handler


def data(obj: Any) -> Any:
    return None if obj is None else obj.get("data")


async def test_cache_and_handlers_follow_changes(kube: Client, namespace: str) -> None:
    await kube.apply(configmap(namespace, "early", v="1"), field_manager="t")
    informer = Informer(kube, "v1", "ConfigMap", namespace=namespace)
    events: list[Event] = []
    informer.add_handler(recorder(events))
    assert not informer.synced
    async with running(informer.run()):
        await informer.wait_synced()
        assert informer.synced
        # The first list is in the cache and went to the handlers before "synced".
        assert [(t, old, data(new)) for t, old, new in events] == [("ADDED", None, {"v": "1"})]
        assert data(informer.get(f"{namespace}/early")) == {"v": "1"}

        await kube.apply(configmap(namespace, "early", v="2"), field_manager="t")
        await kube.apply(configmap(namespace, "late", v="1"), field_manager="t")
        await kube.delete("v1", "ConfigMap", "late", namespace)
        await eventually(lambda: len(events) == 4)
        assert [(t, data(old), data(new)) for t, old, new in events[1:]] == [
            ("MODIFIED", {"v": "1"}, {"v": "2"}),
            ("ADDED", None, {"v": "1"}),
            ("DELETED", {"v": "1"}, None),
        ]
        assert informer.get(f"{namespace}/late") is None
        assert [o["metadata"]["name"] for o in informer.list()] == ["early"]
        assert [o["metadata"]["name"] for o in informer.list(namespace)] == ["early"]
        assert informer.list("elsewhere") == []


async def test_a_handler_added_after_sync_hears_of_cached_objects(
    kube: Client, namespace: str
) -> None:
    await kube.apply(configmap(namespace, "a", v="1"), field_manager="t")
    informer = Informer(kube, "v1", "ConfigMap", namespace=namespace)
    async with running(informer.run()):
        await informer.wait_synced()
        late: list[Event] = []
        informer.add_handler(recorder(late))
        assert [(t, new["metadata"]["name"]) for t, _, new in late] == [("ADDED", "a")]


async def test_resync_reports_every_cached_object_again(kube: Client, namespace: str) -> None:
    await kube.apply(configmap(namespace, "a", v="1"), field_manager="t")
    await kube.apply(configmap(namespace, "b", v="1"), field_manager="t")
    informer = Informer(kube, "v1", "ConfigMap", namespace=namespace, resync=0.2)
    events: list[Event] = []
    informer.add_handler(recorder(events))
    async with running(informer.run()):
        await eventually(lambda: sum(t == "RESYNC" for t, _, _ in events) >= 4)
    resyncs = [(old, new) for t, old, new in events if t == "RESYNC"]
    assert all(old is new for old, new in resyncs)
    assert {new["metadata"]["name"] for _, new in resyncs} == {"a", "b"}


async def test_label_selector_limits_the_cache(kube: Client, namespace: str) -> None:
    wanted = configmap(namespace, "wanted", v="1")
    wanted["metadata"]["labels"] = {"app": "demo"}
    await kube.apply(wanted, field_manager="t")
    await kube.apply(configmap(namespace, "other", v="1"), field_manager="t")
    informer = Informer(kube, "v1", "ConfigMap", namespace=namespace, label_selector="app=demo")
    async with running(informer.run()):
        await informer.wait_synced()
        assert [o["metadata"]["name"] for o in informer.list()] == ["wanted"]


async def test_informer_set_shares_informers_and_runs_late_ones(
    kube: Client, namespace: str
) -> None:
    await kube.apply(configmap(namespace, "cm", v="1"), field_manager="t")
    informers = InformerSet(kube)
    configmaps = informers.informer("v1", "ConfigMap")
    assert informers.informer("v1", "ConfigMap") is configmaps
    async with running(informers.run()):
        await informers.wait_synced()
        assert configmaps.get(f"{namespace}/cm") is not None
        # Asked for while the set runs: started and synced without a restart.
        namespaces = informers.informer("v1", "Namespace")
        await informers.wait_synced()
        assert namespaces.get(namespace) is not None
        assert informers.synced
        assert set(informers) == {configmaps, namespaces}


async def test_an_informer_started_before_its_crd_syncs_once_installed(
    kube: Client, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    group = f"g{secrets.token_hex(4)}.runtime.tidegate.test"
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = f"widgets.{group}"
    crd["spec"]["group"] = group
    informer = Informer(kube, f"{group}/v1", "Widget", namespace=namespace)
    with caplog.at_level(logging.ERROR, logger="tidegate.runtime"):
        async with running(informer.run()):
            await eventually(lambda: "failed to watch Widget" in caplog.text)
            assert not informer.synced
            await kube.apply(crd, field_manager="t")
            await asyncio.wait_for(informer.wait_synced(), 60)
            created = widget(namespace, "w")
            created["apiVersion"] = f"{group}/v1"
            await kube.create(created)
            await eventually(lambda: informer.get(f"{namespace}/w") is not None)
    await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}")
