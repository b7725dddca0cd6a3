"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Every write carries the resourceVersion it was based on, so of two candidates racing for a
free or expired lease exactly one succeeds. A lease held by another candidate counts as
expired only once it has not changed for its `leaseDurationSeconds` measured on *this*
machine's clock, so clock skew between machines cannot make two leaders.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tidegate.kube import Client, Conflict, KubeError, NotFound, Object

from ._metrics import GaugeChild, Metrics

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


class LeadershipLost(Exception):
    """The lease could not be renewed in time (or another candidate holds it now)."""


class LeaderElection:
    """Runs work only while this candidate (`identity`) holds the Lease `namespace/name`."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 35.0,
        renew_deadline: float = 30.0,
        retry_period: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0"
            )
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._leader = False
        self._lease: Object | None = None  # the lease as last written by us
        self._observed_spec: str | None = None
        self._observed_at = 0.0
        self._status = GaugeChild()
        if metrics is not None:
            self._status = metrics.gauge(
                "leader_election_master_status",
                "Gauge of if the reporting system is master of the relevant lease, "
                "0 indicates backup, 1 indicates master",
                ("name",),
            ).labels(name)

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Wait to become leader, then run `work()` while renewing the lease.

        Returns when `work` returns (re-raising its exception), releasing the lease so that
        another candidate takes over at once; the same on cancellation. Raises
        `LeadershipLost` (after cancelling `work`) if the lease cannot be renewed in time.
        """
        await self._acquire()
        work_task = asyncio.ensure_future(work())
        renew_task = asyncio.create_task(self._renew())
        try:
            done, _ = await asyncio.wait(
                {work_task, renew_task}, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            await _cancel(work_task, renew_task)
            await self._release()
            raise
        if renew_task in done:
            await _cancel(work_task)
            self._set_leader(False)
            renew_task.result()  # raises LeadershipLost
        await _cancel(renew_task)
        await self._release()
        work_task.result()

    async def _acquire(self) -> None:
        log.info("attempting to acquire leader lease %s/%s", self.namespace, self.name)
        while True:
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self.retry_period * random.uniform(1.0, 1.2))
        log.info(
            "successfully acquired lease %s/%s",
            self.namespace,
            self.name,
            extra={"identity": self.identity},
        )

    async def _renew(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            left = self.renew_deadline - (time.monotonic() - renewed)
            try:
                async with asyncio.timeout(max(left, 0.001)):
                    ok = await self._try_acquire_or_renew()
            except TimeoutError:
                ok = False
            if ok:
                renewed = time.monotonic()
                continue
            if self._held_by_other():
                raise LeadershipLost(f"lease {self.namespace}/{self.name} taken by another")
            if time.monotonic() - renewed >= self.renew_deadline:
                raise LeadershipLost(
                    f"failed to renew lease {self.namespace}/{self.name} "
                    f"within {self.renew_deadline:g}s"
                )

    async def _try_acquire_or_renew(self) -> bool:
        now = _micro_time()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }
        try:
            current = await self.client.get(LEASE_API, "Lease", self.name, self.namespace)
        except NotFound:
            lease: Object = {
                "apiVersion": LEASE_API,
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            return await self._write(lease, create=True)
        except KubeError as exc:
            log.warning("failed to read lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        old: dict[str, Any] = current.get("spec") or {}
        self._observe(old)
        holder = old.get("holderIdentity") or ""
        if holder and holder != self.identity and self._valid(old):
            return False
        if holder == self.identity:
            spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = old.get("leaseTransitions") or 0
        else:
            spec["leaseTransitions"] = (old.get("leaseTransitions") or 0) + 1
        return await self._write({**current, "spec": spec})

    async def _write(self, lease: Object, *, create: bool = False) -> bool:
        try:
            if create:
                written = await self.client.create(lease)
            else:
                written = await self._replace(lease)
        except Conflict:
            return False  # someone else wrote first (or created it first)
        except KubeError as exc:
            log.warning("failed to update lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._lease = written
        self._observe(written.get("spec") or {})
        self._set_leader(True)
        return True

    async def _replace(self, lease: Object) -> Object:
        # A PUT carrying metadata.resourceVersion: the API server refuses it with 409 Conflict
        # if the lease changed since it was read.
        resource = await self.client.resource(LEASE_API, "Lease")
        return await self.client.request(
            "PUT", resource.path(self.namespace, self.name), body=lease
        )

    async def _release(self) -> None:
        """Give the lease up so that a successor need not wait for it to expire."""
        lease, self._lease = self._lease, None
        was_leader = self._leader
        self._set_leader(False)
        if lease is None or not was_leader:
            return
        old = lease.get("spec") or {}
        now = _micro_time()
        spec = {
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": old.get("leaseTransitions") or 0,
        }
        try:
            async with asyncio.timeout(self.retry_period):
                await self._replace({**lease, "spec": spec})
        except (KubeError, TimeoutError) as exc:
            log.warning("failed to release lease %s/%s: %s", self.namespace, self.name, exc)
            return
        log.info("released lease %s/%s", self.namespace, self.name)

    def _observe(self, spec: dict[str, Any]) -> None:
        raw = json.dumps(spec, sort_keys=True)
        if raw != self._observed_spec:
            self._observed_spec = raw
            self._observed_at = time.monotonic()

    def _valid(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return time.monotonic() < self._observed_at + duration

    def _held_by_other(self) -> bool:
        spec = json.loads(self._observed_spec or "{}")
        holder = spec.get("holderIdentity") or ""
        return bool(holder) and holder != self.identity

    def _set_leader(self, leader: bool) -> None:
        self._leader = leader
        self._status.set(1 if leader else 0)


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _micro_time() -> str:
    """Now as a Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
