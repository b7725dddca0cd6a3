from __future__ import annotations

import pytest

from tidegate.kube import Client

from .support import install_widget_crd


@pytest.fixture
async def widgets(kube: Client) -> None:
    """The Widget custom resource (with a status subresource) is installed."""
    await install_widget_crd(kube)
