"""Controller against the real API server: what triggers a reconcile, retries, requeues,
one reconcile per key at a time, watching other kinds, and graceful shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tidegate.kube import Client
from tidegate.runtime import Controller, InformerSet, Request, Result, changed

from .support import WIDGET_API, configmap, eventually, running, widget

pytestmark = pytest.mark.cluster

REQUESTED_AT = "example.com/requestedAt"


class Recorder:
    """A reconcile function that remembers what it was asked, and when."""

    def __init__(self, then: Callable[[Request], Awaitable[Result]] | None = None) -> None:
        self.calls: list[Request] = []
        self.times: list[float] = []
        self.then = then

    async def __call__(self, request: Request) -> Result:
        self.calls.append(request)
        self.times.append(asyncio.get_running_loop().time())
        if self.then is not None:
            return await self.then(request)
        return Result()

    def names(self) -> list[str]:
        return [r.name for r in self.calls]


async def test_objects_created_updated_and_deleted_are_reconciled(
    kube: Client, namespace: str
) -> None:
    informers = InformerSet(kube)
    configmaps = informers.informer("v1", "ConfigMap")
    seen: list[tuple[str, Any]] = []

    async def reconcile(request: Request) -> Result:
        obj = configmaps.get(request)
        if request.namespace == namespace:
            seen.append((request.name, None if obj is None else obj["data"]))
        return Result()

    controller = Controller("configmaps", configmaps, reconcile, workers=2)
    async with running(informers.run(), controller.run()):
        await kube.apply(configmap(namespace, "a", v="1"), field_manager="t")
        await eventually(lambda: ("a", {"v": "1"}) in seen)
        await kube.apply(configmap(namespace, "a", v="2"), field_manager="t")
        await eventually(lambda: ("a", {"v": "2"}) in seen)
        await kube.delete("v1", "ConfigMap", "a", namespace)
        # The reconciler learns of the deletion and finds the object gone from the cache.
        await eventually(lambda: seen[-1] == ("a", None))


async def test_objects_existing_before_start_are_reconciled(kube: Client, namespace: str) -> None:
    for name in ("x", "y"):
        await kube.apply(configmap(namespace, name, v="1"), field_manager="t")
    informers = InformerSet(kube)
    reconcile = Recorder()
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    controller = Controller("existing", informer, reconcile)
    async with running(informers.run(), controller.run()):
        await eventually(lambda: set(reconcile.names()) == {"x", "y"})
    assert Request(namespace, "x") in reconcile.calls


@pytest.mark.usefixtures("widgets")
async def test_changed_predicate_skips_status_only_updates(kube: Client, namespace: str) -> None:
    informers = InformerSet(kube)
    informer = informers.informer(WIDGET_API, "Widget", namespace=namespace)
    reconcile = Recorder()
    # One worker: keys are reconciled in the order their changes arrived, so once the
    # sentinel's reconcile is seen, any reconcile the earlier change caused has happened.
    controller = Controller(
        "widgets", informer, reconcile, workers=1, predicate=changed(annotations=[REQUESTED_AT])
    )
    sentinels = 0

    async def settle() -> list[str]:
        """The widget reconciles since the last call, once all earlier events are handled."""
        nonlocal sentinels
        sentinels += 1
        name = f"sentinel-{sentinels}"
        await kube.create(widget(namespace, name))
        await eventually(lambda: name in reconcile.names())
        calls = [n for n in reconcile.names() if n == "w"]
        reconcile.calls.clear()
        return calls

    async with running(informers.run(), controller.run()):
        created = await kube.create(widget(namespace, "w", size=1))
        assert await settle() == ["w"]

        await kube.patch_status(created, {"phase": "Ready", "observedGeneration": 1})
        assert await settle() == []

        labelled = {"metadata": {"labels": {"team": "a"}, "annotations": {"other": "x"}}}
        await kube.patch(WIDGET_API, "Widget", "w", labelled, namespace)
        assert await settle() == []

        # A spec change bumps metadata.generation.
        await kube.patch(WIDGET_API, "Widget", "w", {"spec": {"size": 2}}, namespace)
        assert await settle() == ["w"]

        requested = {"metadata": {"annotations": {REQUESTED_AT: "now"}}}
        await kube.patch(WIDGET_API, "Widget", "w", requested, namespace)
        assert await settle() == ["w"]

        finalizer = {"metadata": {"finalizers": ["example.com/cleanup"]}}
        await kube.patch(WIDGET_API, "Widget", "w", finalizer, namespace)
        assert await settle() == []

        # Deleting an object with a finalizer sets deletionTimestamp.
        await kube.delete(WIDGET_API, "Widget", "w", namespace)
        assert await settle() == ["w"]
        await kube.patch(WIDGET_API, "Widget", "w", {"metadata": {"finalizers": None}}, namespace)
        assert await settle() == ["w"]  # DELETED
        await eventually(lambda: informer.get(f"{namespace}/w") is None)


async def test_errors_are_retried_with_growing_backoff(kube: Client, namespace: str) -> None:
    failures_left = 4

    async def flaky(request: Request) -> Result:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise RuntimeError("not yet")
        return Result()

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    reconcile = Recorder(flaky)
    controller = Controller("flaky", informer, reconcile, base_delay=0.05, max_delay=10)
    await kube.apply(configmap(namespace, "cm", v="1"), field_manager="t")
    async with running(informers.run(), controller.run()):
        await eventually(lambda: len(reconcile.calls) == 5)
        request = Request(namespace, "cm")
        # Success forgets the failures.
        await eventually(lambda: controller.queue.num_requeues(request) == 0)
        await asyncio.sleep(0.5)
        assert len(reconcile.calls) == 5  # no more retries after the success
    gaps = [b - a for a, b in zip(reconcile.times, reconcile.times[1:], strict=False)]
    for gap, backoff in zip(gaps, [0.05, 0.1, 0.2, 0.4], strict=True):
        assert gap >= backoff - 0.01


async def test_requeue_after_reconciles_again(kube: Client, namespace: str) -> None:
    async def again(request: Request) -> Result:
        return Result(requeue_after=0.2)

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    reconcile = Recorder(again)
    controller = Controller("periodic", informer, reconcile, jitter=0.5)
    await kube.apply(configmap(namespace, "cm", v="1"), field_manager="t")
    async with running(informers.run(), controller.run()):
        await eventually(lambda: len(reconcile.calls) >= 4)
    gaps = [b - a for a, b in zip(reconcile.times, reconcile.times[1:], strict=False)]
    assert all(gap >= 0.2 - 0.01 for gap in gaps[:3])
    assert set(reconcile.names()) == {"cm"}


async def test_a_key_is_never_reconciled_twice_at_once(kube: Client, namespace: str) -> None:
    informers = InformerSet(kube)
    configmaps = informers.informer("v1", "ConfigMap", namespace=namespace)
    busy: set[Request] = set()
    overlaps: list[Request] = []
    last_seen: dict[str, str] = {}

    async def slow(request: Request) -> Result:
        if request in busy:
            overlaps.append(request)
        busy.add(request)
        try:
            await asyncio.sleep(0.05)
            obj = configmaps.get(request)
            if obj is not None:
                last_seen[request.name] = obj["data"]["v"]
        finally:
            busy.discard(request)
        return Result()

    controller = Controller("serial", configmaps, slow, workers=8)
    async with running(informers.run(), controller.run()):
        for i in range(30):
            await kube.apply(configmap(namespace, f"cm{i % 3}", v=str(i)), field_manager="t")
        # Level-triggered: the last reconcile of each object saw its last state.
        await eventually(lambda: last_seen == {"cm0": "27", "cm1": "28", "cm2": "29"})
    assert overlaps == []


async def test_watch_maps_changes_of_another_kind(kube: Client, namespace: str) -> None:
    informers = InformerSet(kube)
    configmaps = informers.informer("v1", "ConfigMap", namespace=namespace)
    secrets = informers.informer("v1", "Secret", namespace=namespace)
    reconcile = Recorder()
    controller = Controller("mapped", configmaps, reconcile)

    def users_of(secret: dict[str, Any]) -> list[Request]:
        user = secret["metadata"].get("annotations", {}).get("used-by")
        return [Request(namespace, user)] if user else []

    controller.watch(secrets, users_of)
    await kube.apply(configmap(namespace, "app", v="1"), field_manager="t")
    async with running(informers.run(), controller.run()):
        await eventually(lambda: reconcile.names() == ["app"])
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "creds",
                "namespace": namespace,
                "annotations": {"used-by": "app"},
            },
            "stringData": {"token": "1"},
        }
        await kube.apply(secret, field_manager="t")
        await eventually(lambda: reconcile.names() == ["app", "app"])
        controller.enqueue(Request(namespace, "by-hand"), after=0.05)
        await eventually(lambda: reconcile.names()[-1:] == ["by-hand"])


async def test_shutdown_lets_reconciles_in_flight_finish(kube: Client, namespace: str) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def long(request: Request) -> Result:
        started.set()
        await release.wait()
        await asyncio.sleep(0.2)
        finished.append(request.name)
        return Result()

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    reconcile = Recorder(long)
    controller = Controller("graceful", informer, reconcile, workers=1, grace=30)
    await kube.apply(configmap(namespace, "cm", v="1"), field_manager="t")
    async with running(informers.run()):
        task = asyncio.create_task(controller.run())
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done()  # still waiting for the reconcile in flight
        controller.enqueue(Request(namespace, "too-late"))
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    assert finished == ["cm"]
    assert reconcile.names() == ["cm"]  # no new work was taken while stopping


async def test_shutdown_cancels_reconciles_after_the_grace_period(
    kube: Client, namespace: str
) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def stuck(request: Request) -> Result:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(request.name)
            raise
        return Result()

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    controller = Controller("impatient", informer, stuck, workers=1, grace=0.2)
    await kube.apply(configmap(namespace, "cm", v="1"), field_manager="t")
    async with running(informers.run()):
        task = asyncio.create_task(controller.run())
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    assert cancelled == ["cm"]
