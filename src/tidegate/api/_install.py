"""Install CRDs on a cluster: server-side apply, then wait until the API server serves them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._crd import CRD_API_VERSION, CRD_KIND, crds
from ._duration import format_duration
from ._errors import InstallError

if TYPE_CHECKING:
    from tidegate.kube import Client

FIELD_MANAGER = "tidegate"
_POLL = 0.2


async def install_crds(
    client: Client,
    definitions: Sequence[Mapping[str, Any]] | None = None,
    *,
    field_manager: str = FIELD_MANAGER,
    timeout: float = 300.0,  # noqa: ASYNC109 - the error names the CRD that was not ready
    on_established: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply CRDs (all of tidegate's by default) and wait until each is Established.

    Applies server-side as `field_manager`, taking over fields another manager (say, a
    previous Flux install) owns. Calls `on_established(name)` as each CRD is served and
    returns the names. Raises `InstallError` naming the CRD when applying fails, the API
    server refuses its names, or it is not established within `timeout` seconds.
    """
    from tidegate.kube import KubeError

    definitions = list(definitions) if definitions is not None else crds()
    names = []
    for definition in definitions:
        name = str(definition.get("metadata", {}).get("name", ""))
        try:
            await client.apply(definition, field_manager=field_manager, force=True)
        except KubeError as exc:
            raise InstallError(f"failed to apply CustomResourceDefinition '{name}': {exc}") from exc
        names.append(name)
    deadline = asyncio.get_running_loop().time() + timeout
    for name in names:
        try:
            await _wait_established(client, name, deadline, timeout)
        except KubeError as exc:
            raise InstallError(f"failed to read CustomResourceDefinition '{name}': {exc}") from exc
        if on_established is not None:
            on_established(name)
    return names


async def _wait_established(
    client: Client,
    name: str,
    deadline: float,
    timeout: float,  # noqa: ASYNC109 - only for the message
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        crd = await client.get(CRD_API_VERSION, CRD_KIND, name)
        conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
        established = conditions.get("Established", {})
        if established.get("status") == "True":
            return
        names = conditions.get("NamesAccepted", {})
        if names.get("status") == "False":
            raise InstallError(
                f"CustomResourceDefinition '{name}' not established: names not accepted: "
                f"{names.get('message') or names.get('reason')}"
            )
        if loop.time() >= deadline:
            detail = established.get("message") or "no Established condition yet"
            raise InstallError(
                f"CustomResourceDefinition '{name}' not established after "
                f"{format_duration(timeout)}: {detail}"
            )
        await asyncio.sleep(_POLL)
