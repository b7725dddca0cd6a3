"""Helpers for end-to-end tests: the running controller, waiting, conditions."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tidegate import kube

OCIREPOSITORY = ("source.toolkit.fluxcd.io/v1", "OCIRepository")
SHARD = "tidegate.test/shard"


@dataclass
class RunningController:
    process: subprocess.Popen[bytes]
    storage: Path
    storage_addr: str
    metrics_addr: str
    log: Path
    labels: dict[str, str]  # objects for this controller carry these

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


async def wait_for(
    read: Callable[[], Awaitable[dict[str, Any]]],
    check: Callable[[dict[str, Any]], bool],
    *,
    within: float = 60.0,
    what: str = "condition",
) -> dict[str, Any]:
    """Read until `check` holds; fail with the last state read."""
    deadline = time.monotonic() + within
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = await read()
        except kube.NotFound:
            last = {}
        if check(last):
            return last
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; last state: {last.get('status', last)}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
