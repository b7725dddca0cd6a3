"""Metrics: the text exposition format, and the series controllers and queues record."""

from __future__ import annotations

import math

import aiohttp
import pytest

from tidegate.kube import Client
from tidegate.runtime import (
    Controller,
    InformerSet,
    Metrics,
    ProbeServer,
    Request,
    Result,
    WorkQueue,
)

from .support import configmap, eventually_async, parse_metrics, running, sample


def test_counter_and_gauge_render_with_help_type_and_labels() -> None:
    metrics = Metrics()
    requests = metrics.counter("http_requests_total", "Requests served.", ("code", "method"))
    requests.labels("200", "GET").inc()
    requests.labels(code="200", method="GET").inc(2)
    requests.labels(code="500", method="POST").inc()
    temperature = metrics.gauge("room_temperature", "Degrees.\nCelsius \\ centigrade")
    temperature.set(21.5)
    temperature.dec(0.5)
    text = metrics.render()
    assert text == (
        "# HELP http_requests_total Requests served.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{code="200",method="GET"} 3\n'
        'http_requests_total{code="500",method="POST"} 1\n'
        "# HELP room_temperature Degrees.\\nCelsius \\\\ centigrade\n"
        "# TYPE room_temperature gauge\n"
        "room_temperature 21\n"
    )
    parsed = parse_metrics(text)
    assert sample(parsed, "http_requests_total", code="200", method="GET") == 3


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    odd = 'C:\\path "quoted"\nnext line'
    metrics.counter("odd_total", "Odd labels.", ("value",)).labels(odd).inc()
    text = metrics.render()
    assert 'odd_total{value="C:\\\\path \\"quoted\\"\\nnext line"} 1\n' in text
    assert sample(parse_metrics(text), "odd_total", value=odd) == 1


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    metrics = Metrics()
    duration = metrics.histogram(
        "job_duration_seconds", "Job time.", ("kind", "name", "namespace"), buckets=(0.1, 1, 10)
    )
    job = duration.labels(kind="Widget", name="w", namespace="ns")
    for value in (0.05, 0.1, 0.5):
        job.observe(value)
    for value in (3, 100):
        duration.observe(value, kind="Widget", name="w", namespace="ns")
    with pytest.raises(ValueError, match="expected labels"):
        duration.observe(1)
    parsed = parse_metrics(metrics.render())
    labels = {"kind": "Widget", "name": "w", "namespace": "ns"}
    buckets = {
        le: sample(parsed, "job_duration_seconds_bucket", le=le, **labels)
        for le in ("0.1", "1", "10", "+Inf")
    }
    assert buckets == {"0.1": 2, "1": 3, "10": 4, "+Inf": 5}
    assert sample(parsed, "job_duration_seconds_sum", **labels) == pytest.approx(103.65)
    assert sample(parsed, "job_duration_seconds_count", **labels) == 5
    # Removing a series (the object is gone) drops it from the output.
    duration.remove(kind="Widget", name="w", namespace="ns")
    assert "job_duration_seconds_bucket{" not in metrics.render()


def test_default_buckets_are_the_prometheus_clients() -> None:
    metrics = Metrics()
    metrics.histogram("t_seconds", "T.").observe(0.3)
    parsed = parse_metrics(metrics.render())
    bounds = sorted(
        float(dict(labels)["le"]) for name, labels in parsed if name.endswith("_bucket")
    )
    assert bounds == [
        *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
        math.inf,
    ]


def test_registering_again_returns_the_same_family_or_refuses_a_clash() -> None:
    metrics = Metrics()
    first = metrics.counter("things_total", "Things.", ("kind",))
    assert metrics.counter("things_total", "Things.", ("kind",)) is first
    with pytest.raises(ValueError, match="already registered"):
        metrics.gauge("things_total", "Things.", ("kind",))
    with pytest.raises(ValueError, match="already registered"):
        metrics.counter("things_total", "Things.", ("other",))
    with pytest.raises(ValueError, match="expected labels"):
        first.labels("a", "b")
    with pytest.raises(ValueError, match="only go up"):
        first.labels("a").inc(-1)
    with pytest.raises(ValueError, match="invalid metric name"):
        metrics.counter("bad-name", "Bad.")


async def test_work_queue_counts_adds_retries_and_depth() -> None:
    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue("things", metrics=metrics)
    for item in ("a", "b", "a"):
        queue.add(item)
    queue.add_rate_limited("c")
    parsed = parse_metrics(metrics.render())
    labels = {"name": "things", "controller": "things"}
    assert sample(parsed, "workqueue_adds_total", **labels) == 2  # "a" waited already
    assert sample(parsed, "workqueue_depth", **labels) == 2
    assert sample(parsed, "workqueue_retries_total", **labels) == 1
    item = await queue.get()
    parsed = parse_metrics(metrics.render())
    assert sample(parsed, "workqueue_depth", **labels) == 1
    assert sample(parsed, "workqueue_longest_running_processor_seconds", **labels) >= 0
    queue.done(item)
    queue.shutdown()


async def test_probe_server_serves_metrics_health_and_readiness() -> None:
    metrics = Metrics()
    metrics.counter("pings_total", "Pings.").inc()
    ready = False
    server = ProbeServer(metrics, metrics_addr="127.0.0.1:0", health_addr=":0", ready=lambda: ready)
    async with server, aiohttp.ClientSession() as http:
        assert server.metrics_port
        assert server.health_port
        assert server.metrics_port != server.health_port
        health = f"http://127.0.0.1:{server.health_port}"
        async with http.get(f"{health}/healthz") as response:
            assert response.status == 200
            assert await response.text() == "ok"
        async with http.get(f"{health}/readyz") as response:
            assert response.status == 503
        ready = True
        async with http.get(f"{health}/readyz") as response:
            assert response.status == 200
        async with http.get(f"http://127.0.0.1:{server.metrics_port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert sample(parse_metrics(await response.text()), "pings_total") == 1
        async with http.get(f"{health}/metrics") as response:
            assert response.status == 404  # each listener serves its own paths
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(f"{health}/healthz"):
            pass


@pytest.mark.cluster
async def test_controller_metrics_after_reconciles(kube: Client, namespace: str) -> None:
    metrics = Metrics()
    failed: set[str] = set()

    async def reconcile(request: Request) -> Result:
        if request.name == "broken" and request.name not in failed:
            failed.add(request.name)
            raise RuntimeError("first attempt fails")
        if request.name == "periodic":
            return Result(requeue_after=3600)
        return Result()

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    controller = Controller(
        "configmap", informer, reconcile, workers=3, metrics=metrics, base_delay=0.01
    )
    for name in ("ok", "broken", "periodic"):
        await kube.apply(configmap(namespace, name, v="1"), field_manager="t")
    server = ProbeServer(metrics, metrics_addr="127.0.0.1:0", health_addr="127.0.0.1:0")
    async with running(informers.run(), controller.run()), server, aiohttp.ClientSession() as http:

        async def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            url = f"http://127.0.0.1:{server.metrics_port}/metrics"
            async with http.get(url) as response:
                return parse_metrics(await response.text())

        def total(
            parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], result: str
        ) -> float:
            return sample(
                parsed, "controller_runtime_reconcile_total", controller="configmap", result=result
            )

        async def settled() -> bool:
            # The series exist from the start, at zero.
            parsed = await scrape()
            return total(parsed, "success") == 2 and total(parsed, "requeue_after") == 1

        await eventually_async(settled)
        parsed = await scrape()
        assert total(parsed, "success") == 2  # "ok", and "broken" on its retry
        assert total(parsed, "error") == 1
        assert total(parsed, "requeue_after") == 1
        c = {"controller": "configmap"}
        assert sample(parsed, "controller_runtime_reconcile_errors_total", **c) == 1
        count = sample(parsed, "controller_runtime_reconcile_time_seconds_count", **c)
        assert count == total(parsed, "success") + 2
        assert (
            sample(parsed, "controller_runtime_reconcile_time_seconds_bucket", le="60", **c)
            <= count
        )
        assert sample(parsed, "controller_runtime_max_concurrent_reconciles", **c) == 3
        assert sample(parsed, "controller_runtime_active_workers", **c) == 0
        q = {"name": "configmap", "controller": "configmap"}
        assert sample(parsed, "workqueue_adds_total", **q) >= 4  # three objects and one retry
        assert sample(parsed, "workqueue_retries_total", **q) == 1
        assert sample(parsed, "workqueue_depth", **q) == 0
