"""Cross-namespace references end to end, through a controller run with
`--no-cross-namespace-refs`: a sourceRef or dependsOn naming another namespace is refused
(Ready=False, Stalled=True, AccessDenied, with Flux's message); same-namespace ones work."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tidegate import kube
from tidegate.oci import Registry
from tidegate.testing import Environment

from .support import RunningController, app, condition, failing_with, start_controller, wait_for
from .test_kustomization import applied, configmap, configmaps, publish, source
from .test_kustomization_features import kustomization, reader

pytestmark = [pytest.mark.cluster, pytest.mark.registry]


@pytest.fixture(scope="module")
def blocking_controller(
    tidegate_env: Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningController]:
    """A controller of its own (its own shard label) that blocks cross-namespace refs."""
    with start_controller(tidegate_env, tmp_path_factory, "--no-cross-namespace-refs") as running:
        yield running


def access_denied(obj: dict[str, Any]) -> bool:
    stalled = condition(obj, "Stalled")
    return (
        failing_with("AccessDenied")(obj)
        and stalled is not None
        and stalled["status"] == "True"
        and stalled["reason"] == "AccessDenied"
    )


async def test_cross_namespace_refs_are_refused(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    blocking_controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    controller = blocking_controller
    other = f"test-{secrets.token_hex(4)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    repo = f"{namespace}/cross"
    revision = await publish(client, registry, repo, "v1", app(tmp_path / "app", {
        "app.yaml": configmap("from-app", color="blue"),
    }))  # fmt: skip
    # The OCIRepository lives in `namespace`; the controller still fetches it (sources are
    # not refused, only references to them from another namespace).
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")

    # A Kustomization in `other` whose sourceRef names `namespace`: refused, for good.
    await kustomization(kube, controller, other, "across", sourceRef={
        "kind": "OCIRepository", "name": "app", "namespace": namespace,
    })  # fmt: skip
    obj = await wait_for(reader(kube, other, "across"), access_denied, within=120,
                         what="AccessDenied on the sourceRef")  # fmt: skip
    expected = (
        f"can't access 'OCIRepository/{namespace}/app', cross-namespace references have been "
        "blocked"
    )
    assert condition(obj, "Ready")["message"] == expected  # type: ignore[index]
    assert condition(obj, "Stalled")["message"] == expected  # type: ignore[index]
    assert "lastAttemptedRevision" not in obj["status"]
    assert "lastAppliedRevision" not in obj["status"]

    # A Kustomization in the source's own namespace: applied as usual.
    await kustomization(kube, controller, namespace, "local")
    await wait_for(reader(kube, namespace, "local"), applied(revision), within=120,
                   what="the same-namespace Kustomization ready")  # fmt: skip
    assert sorted(await configmaps(kube, namespace)) == ["from-app"]

    # A dependsOn naming another namespace is refused too, even with a local source.
    await kustomization(kube, controller, namespace, "depends",
                        dependsOn=[{"name": "across", "namespace": other}])  # fmt: skip
    obj = await wait_for(reader(kube, namespace, "depends"), access_denied, within=120,
                         what="AccessDenied on dependsOn")  # fmt: skip
    expected = (
        f"can't access 'Kustomization/{other}/across', cross-namespace references have been blocked"
    )
    assert condition(obj, "Ready")["message"] == expected  # type: ignore[index]
    assert condition(obj, "Stalled")["message"] == expected  # type: ignore[index]
    assert "lastAppliedRevision" not in obj["status"]
    assert await configmaps(kube, other) == {}
