"""Leader election with real Leases: one leader at a time, hand-over on exit, expiry, loss."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from tidegate.kube import Client
from tidegate.runtime import LeaderElection, LeadershipLost

from .support import eventually

pytestmark = pytest.mark.cluster

LEASE = "coordination.k8s.io/v1"
FAST = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}


def candidate(kube: Client, namespace: str, identity: str) -> LeaderElection:
    return LeaderElection(kube, namespace, "controller-leader", identity, **FAST)


async def lease_spec(kube: Client, namespace: str) -> dict[str, Any]:
    lease = await kube.get(LEASE, "Lease", "controller-leader", namespace)
    spec: dict[str, Any] = lease["spec"]
    return spec


class Work:
    """Work that runs until told to stop, noting who ran when."""

    def __init__(self, name: str, leaders: list[str]) -> None:
        self.name = name
        self.leaders = leaders
        self.running = asyncio.Event()
        self.stop = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> None:
        self.leaders.append(self.name)
        self.running.set()
        try:
            await self.stop.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.leaders.remove(self.name)


async def test_one_leader_and_hand_over_on_exit(kube: Client, namespace: str) -> None:
    leaders: list[str] = []
    overlaps: list[list[str]] = []
    first, second = Work("a", leaders), Work("b", leaders)
    a, b = candidate(kube, namespace, "a"), candidate(kube, namespace, "b")
    task_a = asyncio.create_task(a.run(first))
    task_b = asyncio.create_task(b.run(second))

    async def watch_overlaps() -> None:
        while True:
            if len(leaders) > 1:
                overlaps.append(list(leaders))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_overlaps())
    try:
        done, _ = await asyncio.wait(
            [asyncio.create_task(first.running.wait()), asyncio.create_task(second.running.wait())],
            timeout=30,
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert done
        leader, follower = (first, second) if first.running.is_set() else (second, first)
        leader_task = task_a if leader is first else task_b
        # The leader keeps renewing: the other waits well past the lease duration.
        await asyncio.sleep(3 * FAST["lease_duration"])
        assert not follower.running.is_set()
        assert leaders == [leader.name]
        assert (await lease_spec(kube, namespace))["holderIdentity"] == leader.name
        transitions = (await lease_spec(kube, namespace)).get("leaseTransitions", 0)

        # Work ends: the follower takes over.
        leader.stop.set()
        await asyncio.wait_for(leader_task, 30)
        await asyncio.wait_for(follower.running.wait(), 30)
        spec = await lease_spec(kube, namespace)
        assert spec["holderIdentity"] == follower.name
        assert spec["leaseTransitions"] == transitions + 1
        assert (a if follower is first else b).is_leader
        assert not (a if leader is first else b).is_leader
        follower.stop.set()
        await asyncio.wait_for(asyncio.gather(task_a, task_b), 30)
    finally:
        watcher.cancel()
        for task in (task_a, task_b):
            task.cancel()
        await asyncio.gather(task_a, task_b, watcher, return_exceptions=True)
    assert overlaps == []
    assert "holderIdentity" not in await lease_spec(kube, namespace)


async def test_a_released_lease_is_taken_over_before_it_would_expire(
    kube: Client, namespace: str
) -> None:
    slow = {"lease_duration": 120.0, "renew_deadline": 100.0, "retry_period": 0.2}
    leaders: list[str] = []
    first, second = Work("a", leaders), Work("b", leaders)
    a = LeaderElection(kube, namespace, "controller-leader", "a", **slow)
    b = LeaderElection(kube, namespace, "controller-leader", "b", **slow)
    task_a = asyncio.create_task(a.run(first))
    await asyncio.wait_for(first.running.wait(), 30)
    task_b = asyncio.create_task(b.run(second))
    try:
        await asyncio.sleep(0.5)
        assert not second.running.is_set()
        first.stop.set()
        await asyncio.wait_for(task_a, 30)
        # Far sooner than the 120 s the lease would take to expire.
        await asyncio.wait_for(second.running.wait(), 30)
        assert b.is_leader
    finally:
        for task in (task_a, task_b):
            task.cancel()
        await asyncio.gather(task_a, task_b, return_exceptions=True)


async def test_cancelling_the_leader_releases_the_lease(kube: Client, namespace: str) -> None:
    leaders: list[str] = []
    work = Work("a", leaders)
    election = candidate(kube, namespace, "a")
    task = asyncio.create_task(election.run(work))
    await asyncio.wait_for(work.running.wait(), 30)
    assert election.is_leader
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.cancelled
    assert not election.is_leader
    assert "holderIdentity" not in await lease_spec(kube, namespace)


async def test_a_held_lease_blocks_until_it_expires(kube: Client, namespace: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await kube.create(
        {
            "apiVersion": LEASE,
            "kind": "Lease",
            "metadata": {"name": "controller-leader", "namespace": namespace},
            "spec": {
                "holderIdentity": "ghost",
                "leaseDurationSeconds": 3,
                "acquireTime": now,
                "renewTime": now,
            },
        }
    )
    leaders: list[str] = []
    work = Work("a", leaders)
    election = candidate(kube, namespace, "a")
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(election.run(work))
    try:
        # The ghost never renews: after its 3 s (on our clock) the lease is taken over.
        await asyncio.wait_for(work.running.wait(), 30)
        assert loop.time() - started >= 3 - 0.1
        spec = await lease_spec(kube, namespace)
        assert spec["holderIdentity"] == "a"
        assert spec["leaseTransitions"] == 1
    finally:
        work.stop.set()
        await asyncio.wait_for(task, 30)


async def test_losing_the_lease_cancels_work(kube: Client, namespace: str) -> None:
    leaders: list[str] = []
    work = Work("a", leaders)
    election = candidate(kube, namespace, "a")
    task = asyncio.create_task(election.run(work))
    await asyncio.wait_for(work.running.wait(), 30)
    # Another party takes the lease over (as if this process had stalled).
    lease = await kube.get(LEASE, "Lease", "controller-leader", namespace)
    lease["spec"]["holderIdentity"] = "thief"
    lease["spec"]["leaseDurationSeconds"] = 3600
    path = (await kube.resource(LEASE, "Lease")).path(namespace, "controller-leader")
    await kube.request("PUT", path, body=lease)
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(task, 30)
    assert work.cancelled
    assert not election.is_leader
    assert (await lease_spec(kube, namespace))["holderIdentity"] == "thief"


async def test_many_candidates_racing_for_a_fresh_lease_elect_one(
    kube: Client, namespace: str
) -> None:
    leaders: list[str] = []
    works = [Work(f"c{i}", leaders) for i in range(5)]
    elections = [candidate(kube, namespace, w.name) for w in works]
    tasks = [asyncio.create_task(e.run(w)) for e, w in zip(elections, works, strict=True)]
    try:
        await eventually(lambda: any(w.running.is_set() for w in works))
        await asyncio.sleep(1.0)
        assert len(leaders) == 1
        assert sum(e.is_leader for e in elections) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_timings_must_leave_room_for_renewal() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderElection(None, "ns", "l", "me", lease_duration=10, renew_deadline=10)  # type: ignore[arg-type]
