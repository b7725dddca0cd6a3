"""The artifact server: files under the storage root over GET and HEAD, 404 for anything else,
whatever the spelling of the request."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tidegate.source import Artifact, ArtifactServer, Storage

TESTDATA = Path(__file__).parent / "testdata"
SECRET = b"outside the storage root"


@pytest.fixture
async def stored(tmp_path: Path) -> tuple[Storage, Artifact]:
    storage = Storage(tmp_path / "storage", "artifacts.local")
    tree = tmp_path / "app"
    shutil.copytree(TESTDATA / "app", tree)
    (tree / "payload.bin").write_bytes(os.urandom(3 << 20))  # several chunks
    artifact = await storage.archive(
        "OCIRepository", "flux-system", "podinfo", "r", tree, "abc.tar.gz"
    )
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return storage, artifact


@pytest.fixture
async def server(stored: tuple[Storage, Artifact]) -> AsyncIterator[ArtifactServer]:
    async with ArtifactServer(stored[0].root, "127.0.0.1:0") as running:
        yield running


@pytest.fixture
async def client(server: ArtifactServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        yield http


async def raw(server: ArtifactServer, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send a request target exactly as written (no client-side normalisation)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    request = f"{method} {target} HTTP/1.1\r\nHost: artifacts\r\nConnection: close\r\n\r\n"
    writer.write(request.encode("latin-1"))
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


async def test_download_matches_the_stored_artifact(
    stored: tuple[Storage, Artifact], client: httpx.AsyncClient
) -> None:
    storage, artifact = stored

    response = await client.get(f"/{artifact.path}")

    assert response.status_code == 200
    assert response.content == (storage.root / artifact.path).read_bytes()
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == artifact.digest
    assert response.headers["content-length"] == str(artifact.size)
    assert response.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in response.headers  # clients must not inflate it
    assert response.headers["etag"]


async def test_latest_follows_the_symlink(
    stored: tuple[Storage, Artifact], client: httpx.AsyncClient
) -> None:
    _, artifact = stored

    response = await client.get("/ocirepository/flux-system/podinfo/latest.tar.gz")

    assert response.status_code == 200
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == artifact.digest


async def test_head(stored: tuple[Storage, Artifact], client: httpx.AsyncClient) -> None:
    _, artifact = stored

    response = await client.head(f"/{artifact.path}")

    assert response.status_code == 200
    assert response.headers["content-length"] == str(artifact.size)
    assert response.content == b""
    assert (await client.head("/ocirepository/flux-system/podinfo/nope.tar.gz")).status_code == 404


async def test_other_files_are_octet_streams(
    stored: tuple[Storage, Artifact], client: httpx.AsyncClient
) -> None:
    storage, _ = stored
    (storage.root / "helmrepository/flux-system/podinfo").mkdir(parents=True)
    (storage.root / "helmrepository/flux-system/podinfo/index-abc.yaml").write_text("entries: {}\n")

    response = await client.get("/helmrepository/flux-system/podinfo/index-abc.yaml")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.text == "entries: {}\n"


@pytest.mark.parametrize(
    "target",
    [
        "/ocirepository/flux-system/podinfo/missing.tar.gz",
        "/",
        "/ocirepository",
        "/ocirepository/",
        "/ocirepository/flux-system/podinfo",
        "/ocirepository/flux-system/podinfo/",
        "/ocirepository/flux-system/podinfo/abc.tar.gz/",
        "/ocirepository//flux-system/podinfo/abc.tar.gz",
    ],
)
async def test_missing_files_and_folders_are_not_found(server: ArtifactServer, target: str) -> None:
    status, answer = await raw(server, target)

    assert status == 404
    assert b"abc.tar.gz" not in answer.split(b"\r\n\r\n", 1)[1]  # no listing


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/ocirepository/../../secret.txt",
        "/ocirepository/flux-system/podinfo/../../../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/ocirepository/%2e%2e/%2e%2e/secret.txt",
        "/ocirepository/flux-system/podinfo/..%2f..%2f..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "//secret.txt",
        "/%2f..%2fsecret.txt",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/..%00/secret.txt",
        "/%ff%fe",
        "http://artifacts/../secret.txt",
        "/ocirepository/flux-system/podinfo/abc.tar.gz/../../../../secret.txt",
    ],
)
async def test_traversal_is_not_found(server: ArtifactServer, target: str) -> None:
    status, answer = await raw(server, target)

    assert status == 404
    assert SECRET not in answer


async def test_absolute_storage_path_is_not_found(
    stored: tuple[Storage, Artifact], server: ArtifactServer
) -> None:
    storage, artifact = stored

    status, _ = await raw(server, str(storage.root / artifact.path))

    assert status == 404


async def test_symlinks_out_of_the_root_are_not_found(
    stored: tuple[Storage, Artifact], server: ArtifactServer, tmp_path: Path
) -> None:
    storage, _ = stored
    folder = storage.root / "ocirepository/flux-system/podinfo"
    (folder / "escape.tar.gz").symlink_to(tmp_path / "secret.txt")
    (folder / "relative.tar.gz").symlink_to("../../../../secret.txt")
    (folder / "passwd.tar.gz").symlink_to("/etc/passwd")
    (storage.root / "outside").symlink_to(tmp_path)
    (folder / "loop.tar.gz").symlink_to("loop.tar.gz")

    for target in [
        "/ocirepository/flux-system/podinfo/escape.tar.gz",
        "/ocirepository/flux-system/podinfo/relative.tar.gz",
        "/ocirepository/flux-system/podinfo/passwd.tar.gz",
        "/outside/secret.txt",
        "/ocirepository/flux-system/podinfo/loop.tar.gz",
    ]:
        status, answer = await raw(server, target)
        assert status == 404, target
        assert SECRET not in answer


async def test_symlinks_inside_the_root_are_followed(
    stored: tuple[Storage, Artifact], client: httpx.AsyncClient
) -> None:
    storage, artifact = stored
    (storage.root / "alias").symlink_to("ocirepository/flux-system/podinfo")

    response = await client.get("/alias/abc.tar.gz")

    assert response.status_code == 200
    assert response.content == (storage.root / artifact.path).read_bytes()


async def test_special_and_hidden_files_are_not_found(
    stored: tuple[Storage, Artifact], server: ArtifactServer
) -> None:
    storage, _ = stored
    folder = storage.root / "ocirepository/flux-system/podinfo"
    os.mkfifo(folder / "pipe.tar.gz")
    (folder / ".abc.tar.gz.123.tmp").write_bytes(b"half written")

    for target in [
        "/ocirepository/flux-system/podinfo/pipe.tar.gz",
        "/ocirepository/flux-system/podinfo/.abc.tar.gz.123.tmp",
        "/ocirepository/flux-system/podinfo/%2eabc.tar.gz.123.tmp",
    ]:
        status, _ = await asyncio.wait_for(raw(server, target), 5)
        assert status == 404, target


async def test_only_get_and_head(stored: tuple[Storage, Artifact], server: ArtifactServer) -> None:
    _, artifact = stored

    for method in ("POST", "PUT", "DELETE"):
        status, _ = await raw(server, f"/{artifact.path}", method)
        assert status == 405
    assert (Path(stored[0].root) / artifact.path).exists()


async def test_many_downloads_at_once(
    stored: tuple[Storage, Artifact], client: httpx.AsyncClient
) -> None:
    _, artifact = stored

    responses = await asyncio.gather(*(client.get(f"/{artifact.path}") for _ in range(8)))

    for response in responses:
        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == artifact.digest


async def test_listens_on_every_interface_with_a_bare_port(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(b"a")
    server = ArtifactServer(tmp_path, ":0")
    await server.start()
    try:
        assert server.port > 0
        hosts = ["127.0.0.1", "[::1]"] if _has_ipv6_loopback() else ["127.0.0.1"]
        async with httpx.AsyncClient() as http:
            for host in hosts:  # one port for both families
                response = await http.get(f"http://{host}:{server.port}/a.tar.gz")
                assert response.content == b"a"
        with pytest.raises(RuntimeError, match="already running"):
            await server.start()
    finally:
        await server.stop()
    await server.stop()  # stopping twice is harmless


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_serves_a_root_created_after_start(tmp_path: Path) -> None:
    root = tmp_path / "later"
    async with ArtifactServer(root, "127.0.0.1:0") as server:
        status, _ = await raw(server, "/a.tar.gz")
        assert status == 404
        root.mkdir()
        (root / "a.tar.gz").write_bytes(b"a")
        status, answer = await raw(server, "/a.tar.gz")
        assert status == 200
        assert answer.endswith(b"\r\n\r\na")


@pytest.mark.parametrize(
    "addr",
    ["", "9090", "localhost", "localhost:", "host:port", "host:99999", "host:-1", "::1:9090",
     "host:\uff19\uff10", "host:9090 "],
)  # fmt: skip
def test_invalid_addresses(tmp_path: Path, addr: str) -> None:
    with pytest.raises(ValueError, match="invalid address"):
        ArtifactServer(tmp_path, addr)


def test_address_forms(tmp_path: Path) -> None:
    assert ArtifactServer(tmp_path).port == 9090
    assert ArtifactServer(tmp_path, ":8080").host is None
    server = ArtifactServer(tmp_path, "[::1]:0")
    assert (server.host, server.port) == ("::1", 0)
