"""Watch and list-then-watch (Watcher) against the real API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidegate.kube import Client, Gone, Watcher, WatchEvent
from tidegate.testing import Environment

pytestmark = pytest.mark.cluster


def configmap(namespace: str, name: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": value},
    }


async def take(events: AsyncIterator[WatchEvent], count: int) -> list[tuple[str, str]]:
    """The next `count` events as (type, name), failing rather than hanging."""
    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for event in events:
            seen.append((event.type, event.object["metadata"]["name"]))
            if len(seen) == count:
                return

    await asyncio.wait_for(collect(), timeout=30)
    return seen


async def test_watch_sees_added_modified_deleted(kube: Client, namespace: str) -> None:
    start = (await kube.list("v1", "ConfigMap", namespace))["metadata"]["resourceVersion"]
    stream = kube.watch("v1", "ConfigMap", namespace, resource_version=start)
    await kube.apply(configmap(namespace, "a", "1"), field_manager="t")
    await kube.apply(configmap(namespace, "a", "2"), field_manager="t")
    await kube.delete("v1", "ConfigMap", "a", namespace)
    events = [event async for event in _first(stream, 3)]
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    assert events[1].object["data"] == {"value": "2"}


async def _first(stream: AsyncIterator[WatchEvent], count: int) -> AsyncIterator[WatchEvent]:
    taken = 0
    async for event in stream:
        if event.type == "BOOKMARK":
            continue
        yield event
        taken += 1
        if taken == count:
            return


async def test_watcher_lists_then_follows_changes(kube: Client, namespace: str) -> None:
    await kube.apply(configmap(namespace, "early", "1"), field_manager="t")
    watcher = Watcher(kube, "v1", "ConfigMap", namespace)
    events = watcher.events()
    first = await take(events, 1)
    assert first == [("ADDED", "early")]
    assert watcher.synced
    await kube.apply(configmap(namespace, "late", "1"), field_manager="t")
    await kube.apply(configmap(namespace, "early", "2"), field_manager="t")
    await kube.delete("v1", "ConfigMap", "late", namespace)
    assert await take(events, 3) == [("ADDED", "late"), ("MODIFIED", "early"), ("DELETED", "late")]
    assert set(watcher.known) == {f"{namespace}/early"}
    assert watcher.known[f"{namespace}/early"]["data"] == {"value": "2"}
    await events.aclose()


@pytest.fixture(scope="module")
def compacting_env(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """An API server without watch cache, so watches read etcd and see its compaction (a
    cached server answers old resource versions from memory until its window runs out)."""
    env = Environment(
        Path(tmp_path_factory.mktemp("compacting")), apiserver_args=["--watch-cache=false"]
    )
    env.start()
    yield env  # type: ignore[misc]
    env.stop()


async def test_watcher_relists_after_410_and_reports_the_gap(compacting_env: Environment) -> None:
    async with await Client.connect(str(compacting_env.kubeconfig)) as kube:
        ns = "gap"
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for name in ("kept", "changed", "removed"):
            await kube.apply(configmap(ns, name, "1"), field_manager="t")
        watcher = Watcher(kube, "v1", "ConfigMap", ns)
        events = watcher.events()
        assert sorted(await take(events, 3)) == [
            ("ADDED", "changed"),
            ("ADDED", "kept"),
            ("ADDED", "removed"),
        ]
        stale = watcher.resource_version
        await events.aclose()  # the connection drops ...

        # ... and while nobody watches, things change and etcd compacts its history.
        await kube.apply(configmap(ns, "new", "1"), field_manager="t")
        await kube.apply(configmap(ns, "changed", "2"), field_manager="t")
        await kube.delete("v1", "ConfigMap", "removed", ns)
        compacting_env.compact_etcd()
        with pytest.raises(Gone) as gone:
            async for _ in kube.watch("v1", "ConfigMap", ns, resource_version=stale):
                pass
        assert gone.value.status == 410

        events = watcher.events()
        gap = await take(events, 3)
        assert sorted(gap) == [("ADDED", "new"), ("DELETED", "removed"), ("MODIFIED", "changed")]
        assert watcher.relists == 1
        assert set(watcher.known) == {f"{ns}/kept", f"{ns}/changed", f"{ns}/new"}
        assert watcher.known[f"{ns}/changed"]["data"] == {"value": "2"}

        # After the re-list it watches again from the new resourceVersion.
        await kube.apply(configmap(ns, "kept", "2"), field_manager="t")
        assert await take(events, 1) == [("MODIFIED", "kept")]
        await events.aclose()


async def test_watcher_follows_bookmarks(kube: Client, namespace: str) -> None:
    """Changes elsewhere advance the resourceVersion a watcher resumes from, via BOOKMARK
    events it does not pass on (the API server sends them about once a minute)."""
    await kube.apply(configmap(namespace, "mine", "1"), field_manager="t")
    watcher = Watcher(kube, "v1", "ConfigMap", namespace)
    passed_on: list[str] = []

    async def consume() -> None:
        async for event in watcher.events():
            passed_on.append(event.type)

    task = asyncio.create_task(consume())
    try:
        while not watcher.synced:
            await asyncio.sleep(0.05)
        elsewhere = f"{namespace}-elsewhere"
        await kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": elsewhere}}
        )
        other = await kube.apply(configmap(elsewhere, "theirs", "1"), field_manager="t")
        target = int(other["metadata"]["resourceVersion"])
        async with asyncio.timeout(100):
            while int(watcher.resource_version or 0) < target:
                await asyncio.sleep(0.2)
    finally:
        task.cancel()
    assert passed_on == ["ADDED"]  # only the initial object; the bookmark stayed inside
