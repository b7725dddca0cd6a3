"""The client-side token bucket, on a fake clock (no wall time)."""

from __future__ import annotations

import types

import pytest
from kubernetes_asyncio.client import Configuration

from tidegate.kube import Client, ClusterConfig, TokenBucket, _ratelimit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_ratelimit, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(
        _ratelimit, "asyncio", types.SimpleNamespace(sleep=fake.sleep, Lock=_ratelimit.asyncio.Lock)
    )
    return fake


async def test_burst_then_qps(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=10, burst=3)
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    await bucket.acquire()
    assert clock.sleeps == [0.1, 0.1]


async def test_idle_time_refills_up_to_burst_only(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=10, burst=3)
    for _ in range(3):
        await bucket.acquire()
    clock.now += 60  # a minute idle earns 600 tokens, capped at the burst of 3
    for _ in range(4):
        await bucket.acquire()
    assert clock.sleeps == [0.1]


async def test_zero_qps_disables_limiting(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=0, burst=1)
    for _ in range(1000):
        await bucket.acquire()
    assert clock.sleeps == []


async def test_client_defaults_match_flux() -> None:
    configuration = Configuration()
    configuration.host = "https://127.0.0.1:1"
    client = Client(ClusterConfig(configuration, "test"))
    bucket = client.limiter("/api/v1/namespaces/a/configmaps")
    assert (bucket.qps, bucket.burst) == (50, 100)
    # One bucket per resource: ConfigMaps in any namespace share one, Secrets have another.
    assert client.limiter("/api/v1/namespaces/b/configmaps/x") is bucket
    assert client.limiter("/api/v1/namespaces/a/secrets") is not bucket
    tuned = Client(ClusterConfig(configuration, "test"), qps=5, burst=7)
    tuned_bucket = tuned.limiter("/apis/apps/v1/deployments")
    assert (tuned_bucket.qps, tuned_bucket.burst) == (5, 7)
    await client.close()
    await tuned.close()


def test_each_api_resource_has_its_own_bucket() -> None:
    from tidegate.kube._client import _resource_of

    # As client-go's one limiter per REST client: per group/version/resource, whatever the
    # namespace, name or subresource.
    assert _resource_of("/api/v1/namespaces/a/configmaps/x") == "v1/configmaps"
    assert _resource_of("/api/v1/namespaces/b/configmaps?limit=5") == "v1/configmaps"
    assert _resource_of("/api/v1/namespaces/b") == "v1/namespaces"
    assert _resource_of("/api/v1/nodes/n1/status") == "v1/nodes"
    assert (
        _resource_of("/apis/source.toolkit.fluxcd.io/v1/namespaces/ns/ocirepositories/r/status")
        == "source.toolkit.fluxcd.io/v1/ocirepositories"
    )
    assert _resource_of("/apis/apps/v1/deployments") == "apps/v1/deployments"
    assert _resource_of("/apis") == "discovery"
    assert _resource_of("/apis/apps/v1") == "discovery"
    assert _resource_of("/openapi/v3") == "openapi"
