"""The Kustomization controller's artifact step against a real HTTP server: what a source
serves is used only when it is complete, matches its digest and extracts safely."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tidegate.controllers._reconciler import StepError
from tidegate.controllers.kustomization import KustomizationReconciler, _Source
from tidegate.kube import Client
from tidegate.runtime import EventRecorder, Informer

pytestmark = pytest.mark.cluster


def archive(*files: tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


GOOD = archive(("kustomization.yaml", b"resources: []\n"))
TRAVERSAL = archive(("../escaped.yaml", b"kind: ConfigMap\n"))


@asynccontextmanager
async def artifact_server(files: dict[str, bytes]) -> AsyncIterator[str]:
    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            return web.Response(status=404, text="not found")
        return web.Response(body=files[name], content_type="application/gzip")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def source(url: str, data: bytes) -> _Source:
    return _Source(url, "v1@sha256:0", "sha256:" + hashlib.sha256(data).hexdigest(), "")


@pytest.fixture
async def reconciler(kube: Client) -> AsyncIterator[KustomizationReconciler]:
    informer = Informer(kube, "kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    made = KustomizationReconciler(
        kube, informer, EventRecorder(kube, "kustomize-controller"), field_manager="test"
    )
    try:
        yield made
    finally:
        await made.close()


async def test_a_good_artifact_is_extracted(
    reconciler: KustomizationReconciler, tmp_path: Path
) -> None:
    async with artifact_server({"good.tar.gz": GOOD}) as url:
        root = await reconciler.reconcile_artifact(source(f"{url}/good.tar.gz", GOOD), tmp_path)
    assert (root / "kustomization.yaml").read_bytes() == b"resources: []\n"


@pytest.mark.parametrize(
    ("served", "claimed", "error"),
    [
        ({}, GOOD, r"failed to download artifact from .*/app.tar.gz, status: 404 Not Found"),
        ({"app.tar.gz": GOOD[:-10]}, GOOD, "computed digest doesn't match"),
        ({"app.tar.gz": TRAVERSAL}, TRAVERSAL, r"failed to extract artifact .*'\.\.'"),
    ],
)
async def test_a_bad_artifact_is_a_clear_error_and_nothing_is_kept(
    reconciler: KustomizationReconciler,
    tmp_path: Path,
    served: dict[str, bytes],
    claimed: bytes,
    error: str,
) -> None:
    async with artifact_server(served) as url:
        with pytest.raises(StepError, match=error) as caught:
            await reconciler.reconcile_artifact(source(f"{url}/app.tar.gz", claimed), tmp_path)
    assert caught.value.reason == "ArtifactFailed"
    assert not (tmp_path / "escaped.yaml").exists()  # nothing written outside the root


async def test_extraction_leaves_the_event_loop_free(
    reconciler: KustomizationReconciler, tmp_path: Path
) -> None:
    """Extracting runs in a thread: other reconciles' timers keep firing meanwhile."""
    many = archive(*((f"f{i:04d}.yaml", b"x" * 4096) for i in range(3000)))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    async with artifact_server({"many.tar.gz": many}) as url:
        ticker = asyncio.create_task(tick())
        await reconciler.reconcile_artifact(source(f"{url}/many.tar.gz", many), tmp_path)
        ticker.cancel()
    assert len(list((tmp_path / "source").iterdir())) == 3000
    assert ticks > 5
