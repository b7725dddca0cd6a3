"""Retries on 429, 5xx and connection errors, against the real registry behind a proxy that
fails chosen requests first."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import OCIError, Reference, Registry, RegistryError

from .faulty import FaultyProxy

pytestmark = pytest.mark.registry
APP = Path(__file__).parent / "testdata" / "app" / "base"


def fail_first(count: int, status: int, where: str) -> Callable[[str, str], int | None]:
    left = {"n": count}

    def rule(method: str, path: str) -> int | None:
        if where in path and left["n"] > 0:
            left["n"] -= 1
            return status
        return None

    return rule


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_failures_are_retried(registry: str, tmp_path: Path, status: int) -> None:
    target = f"retry/{status}:v1"
    async with Registry(registry, insecure=True, docker_config=False) as direct:
        pushed = await oci.push(direct, Reference.parse(f"{registry}/{target}"), APP)
    with FaultyProxy(registry, fail_first(2, status, "/manifests/")) as proxy:
        async with Registry(proxy.address, insecure=True, docker_config=False) as client:
            pulled = await oci.pull(client, Reference.parse(f"{proxy.address}/{target}"),
                                    tmp_path / "out")  # fmt: skip
    assert pulled.digest == pushed.digest
    assert [s for _, path, s in proxy.seen if "/manifests/" in path] == [status, status, 200]


async def test_persistent_failure_gives_the_registry_error(registry: str) -> None:
    with FaultyProxy(
        registry, lambda method, path: 503 if "/manifests/" in path else None
    ) as proxy:
        async with Registry(proxy.address, insecure=True, retries=2, docker_config=False) as client:
            with pytest.raises(RegistryError) as caught:
                await client.fetch_manifest(Reference.parse(f"{proxy.address}/retry/x:v1"))
    assert caught.value.status == 503
    assert "UNAVAILABLE: injected failure" in str(caught.value)
    assert len(proxy.seen) == 3  # the first try and two retries


async def test_unreachable_registry(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    async with Registry(f"127.0.0.1:{port}", insecure=True, retries=1, docker_config=False) as c:
        with pytest.raises(OCIError, match=f"failed to reach 127.0.0.1:{port}"):
            await oci.pull(c, Reference.parse(f"127.0.0.1:{port}/app:v1"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
