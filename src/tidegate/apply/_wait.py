"""Waiting for applied cluster definitions to become usable, and for deleted objects to go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from tidegate.kube import Client, Impersonation, KubeError, NoKindMatch, NotFound

from ._changeset import ChangeSet
from ._errors import ObjectFailure, WaitFailed
from ._health import ObjectRef, wait_for
from ._order import is_crd

POLL_INTERVAL = 0.5


async def wait_until_ready(
    client: Client,
    refs: Sequence[ObjectRef],
    *,
    wait_timeout: float,
    impersonate: Impersonation | None = None,
) -> None:
    """Wait until every object is Current by kstatus's rules (CRDs Established, Namespaces
    Active), as Flux's staged apply does, and every CRD's served versions are in discovery,
    so that custom resources applied next find their REST mapping."""
    deadline = time.monotonic() + wait_timeout
    # Polled, not watched: definitions are usually ready at the first read, and a short
    # interval keeps the next stage from waiting on Flux's 2 s one.
    result = await wait_for(
        client,
        refs,
        timeout=wait_timeout,
        interval=POLL_INTERVAL,
        fail_fast=False,
        watch=False,
        impersonate=impersonate,
    )
    if not result.ok:
        failures = [
            ObjectFailure(str(ref), f"{ref} status: '{status.status}'")
            for ref, status in result.not_ready().items()
        ]
        raise WaitFailed(failures, ChangeSet(), message=result.error)
    for ref in refs:
        if is_crd({"apiVersion": ref.api_version, "kind": ref.kind}):
            await _wait_until_served(client, ref, deadline, impersonate)


async def wait_until_gone(
    client: Client,
    refs: Sequence[ObjectRef],
    *,
    wait_timeout: float,
    impersonate: Impersonation | None = None,
) -> None:
    """Wait until none of the objects exists any more (finalizers done)."""
    deadline = time.monotonic() + wait_timeout
    pending = list(refs)
    states: dict[ObjectRef, str] = {}
    while True:
        found = await asyncio.gather(*(_presence(client, ref, impersonate) for ref in pending))
        states = {ref: state for ref, state in zip(pending, found, strict=True) if state}
        pending = list(states)
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
    if pending:
        failures = [ObjectFailure(str(ref), f"{ref} status: '{states[ref]}'") for ref in pending]
        raise WaitFailed(failures, ChangeSet())


async def _presence(client: Client, ref: ObjectRef, impersonate: Impersonation | None) -> str:
    """'' when the object is gone, else its state: Terminating, Current or Unknown (an error)."""
    try:
        obj = await client.get(
            ref.api_version, ref.kind, ref.name, ref.namespace, impersonate=impersonate
        )
    except (NotFound, NoKindMatch):
        return ""
    except KubeError as exc:
        return f"Unknown: {exc}"
    return "Terminating" if obj.get("metadata", {}).get("deletionTimestamp") else "Current"


async def _wait_until_served(
    client: Client, ref: ObjectRef, deadline: float, impersonate: Impersonation | None
) -> None:
    while True:
        try:
            crd = await client.get(ref.api_version, ref.kind, ref.name, impersonate=impersonate)
            if await _served(client, crd):
                return
        except KubeError:
            pass
        if time.monotonic() >= deadline:
            failure = ObjectFailure(str(ref), f"{ref} status: 'InProgress'")
            raise WaitFailed([failure], ChangeSet())
        await asyncio.sleep(POLL_INTERVAL)


async def _served(client: Client, crd: dict[str, Any]) -> bool:
    spec = crd.get("spec") or {}
    kind = str((spec.get("names") or {}).get("kind", ""))
    group = str(spec.get("group", ""))
    for version in spec.get("versions") or []:
        if version.get("served"):
            try:
                await client.resource(f"{group}/{version.get('name')}", kind)
            except NoKindMatch:
                return False
    return True
