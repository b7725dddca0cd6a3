"""JSON logging with per-task context fields, including inside a running controller."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tidegate.kube import Client
from tidegate.runtime import (
    Controller,
    InformerSet,
    Request,
    Result,
    configure_logging,
    log_context,
)

from .support import configmap, eventually, running

log = logging.getLogger("tidegate.test")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging goes to a buffer for the test; the previous setup comes back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_level_time_logger_message_and_extra(stream: io.StringIO) -> None:
    configure_logging("info", stream=stream)
    log.debug("hidden")
    log.info("applied %d objects", 3, extra={"revision": "v1@sha256:abc"})
    [entry] = lines(stream)
    assert entry["level"] == "info"
    assert entry["msg"] == "applied 3 objects"
    assert entry["logger"] == "tidegate.test"
    assert entry["revision"] == "v1@sha256:abc"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", entry["ts"])
    assert datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).utcoffset() is not None


def test_context_fields_apply_inside_the_block_only(stream: io.StringIO) -> None:
    configure_logging("info", stream=stream)
    with log_context(controller="c", name="a"):
        with log_context(namespace="ns"):
            log.info("inner", extra={"controller": "override"})
        log.info("outer")
    log.info("after")
    inner, outer, after = lines(stream)
    assert (inner["controller"], inner["namespace"], inner["name"]) == ("override", "ns", "a")
    assert (outer["controller"], outer["name"]) == ("c", "a")
    assert "namespace" not in outer
    assert "controller" not in after


async def test_concurrent_tasks_do_not_mix_their_fields(stream: io.StringIO) -> None:
    configure_logging("info", stream=stream)

    async def work(name: str) -> None:
        with log_context(name=name):
            for step in range(3):
                log.info("step %d", step, extra={"expected": name})
                await asyncio.sleep(0)

    await asyncio.gather(work("a"), work("b"), work("c"))
    entries = lines(stream)
    assert len(entries) == 9
    assert all(e["name"] == e["expected"] for e in entries)
    # They did interleave, or the test would prove nothing.
    assert [e["name"] for e in entries[:3]] != ["a", "a", "a"]


def test_exceptions_become_an_error_field(stream: io.StringIO) -> None:
    configure_logging("info", stream=stream)
    try:
        raise ValueError("artifact digest mismatch")
    except ValueError:
        log.exception("reconcile failed")
    raw = stream.getvalue()
    assert raw.count("\n") == 1
    [entry] = lines(stream)
    assert entry["level"] == "error"
    assert entry["error"] == "artifact digest mismatch"
    assert "Traceback" not in raw


def test_debug_level_adds_the_stacktrace(stream: io.StringIO) -> None:
    configure_logging("debug", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    [entry] = lines(stream)
    assert entry["error"] == "boom"
    assert "Traceback" in entry["stacktrace"]


def test_text_mode_and_reconfiguring_replace_the_handler(stream: io.StringIO) -> None:
    configure_logging("info", stream=io.StringIO())
    configure_logging("warning", json=False, stream=stream)
    with log_context(name="a"):
        log.info("quiet")
        log.warning("loud")
    [line] = stream.getvalue().splitlines()
    assert " WARNING tidegate.test loud name=a" in line


@pytest.mark.cluster
async def test_reconciles_log_with_their_own_context(
    kube: Client, namespace: str, stream: io.StringIO
) -> None:
    configure_logging("info", stream=stream)
    reconciled: set[str] = set()

    async def reconcile(request: Request) -> Result:
        log.info("start")
        await asyncio.sleep(0.05)  # let the other reconciles run in between
        if request.name == "bad":
            raise RuntimeError("cannot reconcile bad")
        log.info("end")
        reconciled.add(request.name)
        return Result()

    informers = InformerSet(kube)
    informer = informers.informer("v1", "ConfigMap", namespace=namespace)
    controller = Controller("logger", informer, reconcile, workers=3, base_delay=60)
    for name in ("a", "b", "bad"):
        await kube.apply(configmap(namespace, name, v="1"), field_manager="t")
    async with running(informers.run(), controller.run()):
        await eventually(lambda: reconciled == {"a", "b"} and "cannot" in stream.getvalue())
    entries = [e for e in lines(stream) if e.get("controller") == "logger" and "reconcileID" in e]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        assert entry["controllerKind"] == "ConfigMap"
        assert entry["namespace"] == namespace
        by_id.setdefault(entry["reconcileID"], []).append(entry)
    assert sorted(e[0]["name"] for e in by_id.values()) == ["a", "b", "bad"]
    for group in by_id.values():
        assert len({e["name"] for e in group}) == 1  # one reconcile, one object
    [error] = [e for e in entries if e["msg"] == "Reconciler error"]
    assert error["name"] == "bad"
    assert error["level"] == "error"
    assert error["error"] == "cannot reconcile bad"
