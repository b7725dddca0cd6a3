"""pytest fixtures for tests against the real test environment.

Load it with `pytest_plugins = ["tidegate.testing.pytest_plugin"]` in a conftest. Mark tests
that need the API server `@pytest.mark.cluster` and those that need the registry
`@pytest.mark.registry`; the environment starts once, on first need, and stops at the end of
the run, also when tests fail or the run is interrupted. With `TIDEGATE_DEV_DIR` set to the
folder of a running `tidegate dev up`, tests use that environment and leave it running.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from tidegate.kube import Client

from ._environment import Environment


@pytest.fixture(scope="session")
def tidegate_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The running environment: `.kubeconfig`, `.registry`, `.apiserver`, `.pki`."""
    existing = os.environ.get("TIDEGATE_DEV_DIR")
    if existing:
        env = Environment(existing)
        if not env.running():
            pytest.exit(f"TIDEGATE_DEV_DIR={existing} holds no running environment", 2)
        yield env
        return
    env = Environment(tmp_path_factory.mktemp("tidegate-env"), log=print)
    env.start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(autouse=True)
def _environment_for_marked_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("cluster") or request.node.get_closest_marker("registry"):
        request.getfixturevalue("tidegate_env")


@pytest.fixture
async def kube(tidegate_env: Environment) -> AsyncIterator[Client]:
    """An admin client for the environment's API server."""
    client = await Client.connect(str(tidegate_env.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def namespace(kube: Client) -> str:
    """A fresh namespace for one test. (Nothing finalizes deleted namespaces here: no
    controller-manager runs, so it is left in place; the environment is thrown away.)"""
    name = f"test-{secrets.token_hex(4)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def registry(tidegate_env: Environment) -> str:
    """`127.0.0.1:PORT` of the environment's OCI registry (plain HTTP)."""
    return tidegate_env.registry
