"""Helpers for end-to-end tests: the running controller, waiting, conditions."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tidegate import kube, oci
from tidegate.oci import Reference, Registry
from tidegate.testing import Environment
from tidegate.testing._environment import _free_ports

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


@contextmanager
def start_controller(
    tidegate_env: Environment, tmp_path_factory: pytest.TempPathFactory, *extra_args: str
) -> Iterator[RunningController]:
    """Run `tidegate controller run` (with `extra_args`) until the block exits; it watches
    only objects labelled with its own shard, so several can share the environment."""
    tidegate = [sys.executable, "-m", "tidegate"]
    kubeconfig = str(tidegate_env.kubeconfig)
    subprocess.run(
        [*tidegate, "install", "--crds-only", "--kubeconfig", kubeconfig],
        check=True,
        capture_output=True,
    )
    folder = tmp_path_factory.mktemp("controller")
    # This run's controller sees only this run's objects: others in the environment (from
    # other tests, other controllers, or earlier runs against a kept `dev up`) neither slow
    # nor confuse it.
    shard = folder.name + str(time.time_ns())
    storage_port, metrics_port, health_port = _free_ports(3)
    log = folder / "controller.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*tidegate, "controller", "run", "--kubeconfig", kubeconfig,
             "--controllers", "source,kustomize",
             "--storage-path", str(folder / "storage"),
             "--storage-addr", f"127.0.0.1:{storage_port}",
             "--storage-adv-addr", f"127.0.0.1:{storage_port}",
             "--metrics-addr", f"127.0.0.1:{metrics_port}",
             "--health-addr", f"127.0.0.1:{health_port}",
             "--watch-label-selector", f"{SHARD}={shard}", "--concurrent", "4",
             "--min-retry-delay", "300ms", "--max-retry-delay", "3s",
             "--requeue-dependency", "2s", *extra_args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = RunningController(
        process, folder / "storage", f"127.0.0.1:{storage_port}",
        f"127.0.0.1:{metrics_port}", log, {SHARD: shard},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the controller exited at start:\n{running.logs()}")
            try:
                if httpx.get(f"http://127.0.0.1:{health_port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the controller did not become ready:\n{running.logs()}")
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


def failing_with(reason: str) -> Callable[[dict[str, Any]], bool]:
    """Ready=False with `reason`."""

    def check(obj: dict[str, Any]) -> bool:
        ready = condition(obj, "Ready")
        return ready is not None and ready["status"] == "False" and ready["reason"] == reason

    return check


def app(root: Path, files: dict[str, str]) -> Path:
    """A folder of files to push as an artifact."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def tidegate(
    env: Environment, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `tidegate` CLI as a user would, against the test environment."""
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args, "--kubeconfig", str(env.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


async def push_anonymously(registry: str, repository: str, tag: str, root: Path) -> str:
    """Push `root` as `repository:tag` to a registry without auth; returns the digest."""
    async with Registry(registry, insecure=True, docker_config=False) as client:
        pushed = await oci.push(client, Reference.parse(f"{registry}/{repository}:{tag}"), root)
    return pushed.digest
