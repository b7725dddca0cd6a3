"""The controller process under test: `tidegate controller run` against the test environment,
with Flux's CRDs installed by `tidegate install --crds-only`, as a user would run them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tidegate.oci import Registry
from tidegate.testing import Environment
from tidegate.testing._environment import _free_ports

from .support import SHARD, RunningController


@pytest.fixture(scope="module")
def controller(
    tidegate_env: Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningController]:
    tidegate = [sys.executable, "-m", "tidegate"]
    kubeconfig = str(tidegate_env.kubeconfig)
    subprocess.run(
        [*tidegate, "install", "--crds-only", "--kubeconfig", kubeconfig],
        check=True,
        capture_output=True,
    )
    folder = tmp_path_factory.mktemp("controller")
    # This run's controller sees only this run's objects: others in the environment (from
    # other tests, or earlier runs against a kept `dev up`) neither slow nor confuse it.
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
             "--requeue-dependency", "2s"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = RunningController(
        process, folder / "storage", f"127.0.0.1:{storage_port}",
        f"127.0.0.1:{metrics_port}", log, {SHARD: shard},
    )  # fmt: skip
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
            process.kill()
            pytest.fail(f"the controller did not become ready:\n{running.logs()}")
        time.sleep(0.2)
    yield running
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    """A client of the environment's registry (plain HTTP, no credentials)."""
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg
