"""The controller process under test: `tidegate controller run` against the test environment,
with Flux's CRDs installed by `tidegate install --crds-only`, as a user would run them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tidegate.oci import Registry
from tidegate.testing import Environment

from .support import RunningController, start_controller


@pytest.fixture(scope="module")
def controller(
    tidegate_env: Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningController]:
    with start_controller(tidegate_env, tmp_path_factory) as running:
        yield running


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    """A client of the environment's registry (plain HTTP, no credentials)."""
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg
