"""Artifact storage: reproducible archives, ignore rules, the latest link, garbage collection,
atomic writes and refusal of names that could lead out of the root."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tidegate.source import (
    ARCHIVE_OPERATION_FAILED,
    DIRECTORY_CREATION_FAILED,
    GARBAGE_COLLECTION_FAILED,
    INVALID_PATH,
    STAT_OPERATION_FAILED,
    SYMLINK_UPDATE_FAILED,
    Artifact,
    Storage,
    StorageError,
    _storage,
)

TESTDATA = Path(__file__).parent / "testdata"
KIND = "OCIRepository"
FOLDER = ("ocirepository", "flux-system", "podinfo")
HOST = "source-controller.flux-system.svc.cluster.local."


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The test tree, plus the files a checkout brings that must never be archived."""
    tree = tmp_path / "app"
    shutil.copytree(TESTDATA / "app", tree)
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tree / ".gitignore").write_text("*.tmp\n")
    (tree / "bundle.tar.gz").write_bytes(b"an old build\n")
    return tree


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "storage", HOST)


def folder(storage: Storage) -> Path:
    return storage.root.joinpath(*FOLDER)


def names(storage: Storage, artifact: Artifact) -> list[str]:
    with tarfile.open(storage.root / artifact.path) as tar:
        return sorted(member.name for member in tar)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(storage: Storage) -> list[str]:
    """Temporary files anywhere under the root."""
    return [p.name for p in storage.root.rglob(".*")]


async def archive(storage: Storage, tree: Path, filename: str, **options: object) -> Artifact:
    return await storage.archive(
        KIND, "flux-system", "podinfo", f"latest@sha256:{filename[:8]}", tree, filename,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def _modes_are_enforced() -> bool:
    """Whether file modes bind this process (they do not bind root with CAP_DAC_OVERRIDE)."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = Path(scratch) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            probe.read_text()
        except PermissionError:
            return True
        return False


modes_bind_us = pytest.mark.skipif(
    not _modes_are_enforced(), reason="file modes do not bind this user (root)"
)


def age(path: Path, seconds: float) -> None:
    """Set a file's modification time `seconds` in the past."""
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


# Archive: reproducible bytes, status fields.


async def test_archive_is_reproducible(storage: Storage, app: Path, tmp_path: Path) -> None:
    first = await archive(storage, app, "a.tar.gz")
    # The same content elsewhere, with other modification times.
    again = tmp_path / "again"
    shutil.copytree(app, again)
    for path in again.rglob("*"):
        age(path, 3600)
    second = await archive(storage, again, "b.tar.gz")

    assert first.digest == second.digest
    assert first.size == second.size
    stored_a, stored_b = folder(storage) / "a.tar.gz", folder(storage) / "b.tar.gz"
    assert stored_a.read_bytes() == stored_b.read_bytes()


async def test_archive_reports_flux_status_fields(storage: Storage, app: Path) -> None:
    artifact = await archive(storage, app, "0123abcd.tar.gz", metadata={"k": "v"})

    stored = storage.root / "ocirepository/flux-system/podinfo/0123abcd.tar.gz"
    assert artifact.path == "ocirepository/flux-system/podinfo/0123abcd.tar.gz"
    assert artifact.url == f"http://{HOST}/ocirepository/flux-system/podinfo/0123abcd.tar.gz"
    assert artifact.revision == "latest@sha256:0123abcd"
    assert artifact.digest == sha256(stored)
    assert artifact.size == stored.stat().st_size
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", artifact.last_update_time)
    assert artifact.metadata == {"k": "v"}
    assert await storage.verify(artifact)
    assert storage.exists(artifact)


async def test_archive_keeps_modes_and_content(storage: Storage, app: Path) -> None:
    artifact = await archive(storage, app, "a.tar.gz")

    with tarfile.open(storage.root / artifact.path) as tar:
        script = tar.getmember("apply.sh")
        deployment = tar.getmember("deploy/deployment.yaml")
        assert script.mode == 0o755
        assert deployment.mode == 0o644
        assert (deployment.uid, deployment.gid, deployment.mtime) == (0, 0, 0)
        extracted = tar.extractfile(deployment)
        assert extracted is not None
        assert extracted.read() == (app / "deploy/deployment.yaml").read_bytes()


# Ignore rules.


async def test_without_custom_rules_flux_defaults_apply(storage: Storage, app: Path) -> None:
    for found in app.rglob(".sourceignore"):
        found.unlink()
    (app / ".github" / "workflows").mkdir(parents=True)
    (app / ".github" / "workflows" / "ci.yaml").write_text("on: push\n")
    (app / "deploy" / ".sops.yaml").write_text("creation_rules: []\n")
    artifact = await archive(storage, app, "a.tar.gz")

    found = names(storage, artifact)
    # VCS files, binary extensions, CI and CLI configs: Flux's default exclusions.
    for left_out in (".git/HEAD", ".gitignore", "bundle.tar.gz", "docs/diagram.png",
                     ".github/workflows/ci.yaml", "deploy/.sops.yaml"):  # fmt: skip
        assert left_out not in found
    assert {"README.md", "deploy/local.yaml", "deploy/deployment.yaml"} <= set(found)


async def test_sourceignore_files_replace_all_defaults_but_vcs(storage: Storage, app: Path) -> None:
    artifact = await archive(storage, app, "a.tar.gz")

    # As in Flux: with custom rules present, only the VCS defaults remain besides them.
    assert names(storage, artifact) == [
        ".sourceignore",
        "apply.sh",
        "bundle.tar.gz",
        "deploy",
        "deploy/.sourceignore",
        "deploy/deployment.yaml",
        "deploy/service.yaml",
        "docs",
        "docs/diagram.png",
        "docs/index.yaml",
        "kustomization.yaml",
        "secrets",
        "secrets/token.txt",
    ]  # no .git/, .gitignore; no README.md (.sourceignore), deploy/local.yaml


async def test_ignore_text_adds_to_sourceignore_and_vcs_defaults(
    storage: Storage, app: Path
) -> None:
    artifact = await archive(storage, app, "a.tar.gz", ignore="# spec.ignore\nsecrets/\n\n*.sh\n")

    found = names(storage, artifact)
    assert "secrets/token.txt" not in found
    assert "secrets" not in found
    assert "apply.sh" not in found
    # The VCS defaults and the .sourceignore files still apply.
    assert ".git/HEAD" not in found
    assert ".gitignore" not in found
    assert "README.md" not in found
    assert "deploy/local.yaml" not in found
    assert "deploy/deployment.yaml" in found
    assert "docs/diagram.png" in found


async def test_ignore_text_takes_precedence_over_sourceignore(storage: Storage, app: Path) -> None:
    # The artifact's own .sourceignore cannot bring back what the cluster's spec.ignore leaves out.
    (app / ".sourceignore").write_text("*.md\n!secrets/\n!secrets/token.txt\n")
    left_out = await archive(storage, app, "a.tar.gz", ignore="secrets/\n")
    assert "secrets/token.txt" not in names(storage, left_out)

    brought_back = await archive(storage, app, "b.tar.gz", ignore="!README.md\n")
    assert "README.md" in names(storage, brought_back)


@pytest.mark.parametrize("bad", ["!", "\\", "[z-a]"])
async def test_invalid_ignore_text_fails_cleanly(storage: Storage, app: Path, bad: str) -> None:
    before = await archive(storage, app, "a.tar.gz")

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "b.tar.gz", ignore=f"ok.yaml\n{bad}\n")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "invalid ignore rules" in caught.value.message
    assert leftovers(storage) == []
    assert sorted(p.name for p in folder(storage).iterdir()) == ["a.tar.gz", "latest.tar.gz"]
    assert await storage.verify(before)


async def test_invalid_sourceignore_fails_cleanly(storage: Storage, app: Path) -> None:
    (app / ".sourceignore").write_text("*.md\n!\n")  # a lone "!" is no pattern

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "a.tar.gz")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert leftovers(storage) == []


async def test_symlinks_and_special_files_are_not_archived(
    storage: Storage, app: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: outside\n")
    (app / "escape.yaml").symlink_to(outside)
    (app / "inside.yaml").symlink_to("kustomization.yaml")
    (app / "linked").symlink_to(tmp_path)
    os.mkfifo(app / "pipe")

    artifact = await archive(storage, app, "a.tar.gz")

    found = names(storage, artifact)
    assert not {"escape.yaml", "inside.yaml", "linked", "pipe"} & set(found)
    assert "kustomization.yaml" in found


async def test_empty_folder_gives_an_empty_archive(storage: Storage, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    artifact = await archive(storage, empty, "a.tar.gz")

    assert names(storage, artifact) == []
    assert await storage.verify(artifact)


# latest.tar.gz


async def test_latest_points_to_the_newest(storage: Storage, app: Path) -> None:
    await archive(storage, app, "a.tar.gz")
    (app / "kustomization.yaml").write_text("resources: []\n")
    newest = await archive(storage, app, "b.tar.gz")

    latest = folder(storage) / "latest.tar.gz"
    assert latest.is_symlink()
    assert os.readlink(latest) == "b.tar.gz"  # relative: the root can move
    assert sha256(latest) == newest.digest
    assert storage.latest_url(KIND, "flux-system", "podinfo") == (
        f"http://{HOST}/ocirepository/flux-system/podinfo/latest.tar.gz"
    )


async def test_latest_update_failure_is_reported(storage: Storage, app: Path) -> None:
    (folder(storage) / "latest.tar.gz").mkdir(parents=True)
    (folder(storage) / "latest.tar.gz" / "x").write_text("x")

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "a.tar.gz")

    assert caught.value.reason == SYMLINK_UPDATE_FAILED
    assert "latest.tar.gz" in caught.value.message
    assert leftovers(storage) == []
    assert (folder(storage) / "a.tar.gz").is_file()  # the artifact itself is complete


# Copy.


async def test_copy_stores_a_tarball_as_is(storage: Storage, tmp_path: Path) -> None:
    blob = os.urandom(3 << 20)  # not even a tarball: copy does not look inside
    source = tmp_path / "layer.tar.gz"
    source.write_bytes(blob)
    expected = "sha256:" + hashlib.sha256(blob).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(blob), 100_000):
            yield blob[start : start + 100_000]

    from_path = await storage.copy(KIND, "flux-system", "podinfo", "r1", source, "a.tar.gz")
    from_stream = await storage.copy(
        KIND, "flux-system", "podinfo", "r2", io.BytesIO(blob), "b.tar.gz"
    )
    from_chunks = await storage.copy(KIND, "flux-system", "podinfo", "r3", chunks(), "c.tar.gz")

    for artifact in (from_path, from_stream, from_chunks):
        assert artifact.digest == expected
        assert artifact.size == len(blob)
        assert (storage.root / artifact.path).read_bytes() == blob
    assert os.readlink(folder(storage) / "latest.tar.gz") == "c.tar.gz"


async def test_copy_of_a_failing_stream_leaves_nothing(storage: Storage, app: Path) -> None:
    before = await archive(storage, app, "a.tar.gz")

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError(errno.ECONNRESET, "connection reset by peer")

    with pytest.raises(StorageError) as caught:
        await storage.copy(KIND, "flux-system", "podinfo", "r2", broken(), "b.tar.gz")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "ocirepository/flux-system/podinfo/b.tar.gz" in caught.value.message
    assert "connection reset by peer" in caught.value.message
    assert_intact(storage, before)


async def test_copy_refuses_more_than_max_size(storage: Storage, app: Path) -> None:
    before = await archive(storage, app, "a.tar.gz")

    with pytest.raises(StorageError) as caught:
        await storage.copy(
            KIND, "flux-system", "podinfo", "r2", io.BytesIO(b"x" * 5000), "b.tar.gz",
            max_size=4096,
        )  # fmt: skip

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "4096" in caught.value.message
    assert "podinfo/b.tar.gz" in caught.value.message
    assert_intact(storage, before)


async def test_copy_of_a_missing_file_fails(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.copy(
            KIND, "flux-system", "podinfo", "r", tmp_path / "missing.tar.gz", "a.tar.gz"
        )

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "missing.tar.gz" in caught.value.message
    assert leftovers(storage) == []


async def test_cancelled_copy_leaves_nothing(storage: Storage, app: Path) -> None:
    before = await archive(storage, app, "a.tar.gz")
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        started.set()
        await asyncio.sleep(60)
        yield b"never"

    task = asyncio.create_task(
        storage.copy(KIND, "flux-system", "podinfo", "r2", slow(), "b.tar.gz")
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert_intact(storage, before)


# Atomicity: a failed write leaves the previous artifact and latest.tar.gz as they were.


def assert_intact(storage: Storage, before: Artifact) -> None:
    assert leftovers(storage) == []
    assert sorted(p.name for p in folder(storage).iterdir()) == [
        Path(before.path).name,
        "latest.tar.gz",
    ]
    assert sha256(storage.root / before.path) == before.digest
    assert os.readlink(folder(storage) / "latest.tar.gz") == Path(before.path).name


async def test_failure_mid_write_leaves_the_previous_artifact(
    storage: Storage, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await archive(storage, app, "a.tar.gz")
    real_build = _storage.build

    def build_then_fail(entries: list[object], out: _storage._TempFile) -> None:
        real_build(entries, out)  # type: ignore[arg-type]
        assert out.size > 0  # a partial file is on disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_storage, "build", build_then_fail)
    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "b.tar.gz")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "ocirepository/flux-system/podinfo/b.tar.gz" in caught.value.message
    assert "No space left on device" in caught.value.message
    assert_intact(storage, before)


async def test_failure_of_the_final_rename_leaves_the_previous_artifact(
    storage: Storage, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await archive(storage, app, "a.tar.gz")
    (app / "kustomization.yaml").write_text("resources: []\n")
    real_replace = os.replace

    def replace(source: str, target: str | Path) -> None:
        if str(target).endswith("a.tar.gz"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(_storage.os, "replace", replace)
    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "a.tar.gz")  # rewriting the same file name

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert_intact(storage, before)


async def test_file_vanishing_while_archiving_leaves_the_previous_artifact(
    storage: Storage, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await archive(storage, app, "a.tar.gz")
    real_entries = _storage._entries

    def entries_then_vanish(root: Path, ignore: str | None) -> list[object]:
        found = real_entries(root, ignore)
        (app / "deploy" / "service.yaml").unlink()  # after the walk, before it is read
        return found  # type: ignore[return-value]

    monkeypatch.setattr(_storage, "_entries", entries_then_vanish)
    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "b.tar.gz")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "service.yaml" in caught.value.message
    assert_intact(storage, before)


@modes_bind_us
async def test_unreadable_file_leaves_the_previous_artifact(storage: Storage, app: Path) -> None:
    before = await archive(storage, app, "a.tar.gz")
    (app / "deploy" / "service.yaml").chmod(0)

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "b.tar.gz")

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert "Permission denied" in caught.value.message
    assert_intact(storage, before)


@modes_bind_us
async def test_read_only_folder_leaves_the_previous_artifact(storage: Storage, app: Path) -> None:
    before = await archive(storage, app, "a.tar.gz")
    folder(storage).chmod(0o555)
    try:
        with pytest.raises(StorageError) as caught:
            await archive(storage, app, "b.tar.gz")
    finally:
        folder(storage).chmod(0o755)

    assert caught.value.reason == ARCHIVE_OPERATION_FAILED
    assert_intact(storage, before)


async def test_missing_source_folder(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await archive(storage, tmp_path / "missing", "a.tar.gz")

    assert caught.value.reason == STAT_OPERATION_FAILED
    assert "missing" in caught.value.message
    assert leftovers(storage) == []


async def test_source_that_is_a_file(storage: Storage, app: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await archive(storage, app / "kustomization.yaml", "a.tar.gz")

    assert caught.value.reason == STAT_OPERATION_FAILED


async def test_folder_that_cannot_be_created(storage: Storage, app: Path) -> None:
    storage.root.joinpath(*FOLDER[:2]).mkdir(parents=True)
    folder(storage).write_text("in the way\n")

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "a.tar.gz")

    assert caught.value.reason == DIRECTORY_CREATION_FAILED
    assert "ocirepository/flux-system/podinfo" in caught.value.message
    assert folder(storage).read_text() == "in the way\n"


async def test_writes_never_go_through_a_symlinked_folder(
    storage: Storage, app: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage.root.mkdir()
    (storage.root / "ocirepository").symlink_to(elsewhere)

    with pytest.raises(StorageError) as caught:
        await archive(storage, app, "a.tar.gz")

    assert caught.value.reason == DIRECTORY_CREATION_FAILED
    assert list(elsewhere.iterdir()) == []


# Concurrency.


async def test_writes_for_one_object_are_serialised(
    storage: Storage, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = _storage.build
    active: dict[str, int] = {}
    most: dict[str, int] = {}
    guard = threading.Lock()

    def counting_build(entries: list[object], out: _storage._TempFile) -> None:
        key = out.target.parent.name
        with guard:
            active[key] = active.get(key, 0) + 1
            most[key] = max(most.get(key, 0), active[key])
        time.sleep(0.05)
        real_build(entries, out)  # type: ignore[arg-type]
        with guard:
            active[key] -= 1

    monkeypatch.setattr(_storage, "build", counting_build)
    results = await asyncio.gather(
        *(archive(storage, app, f"{i}.tar.gz") for i in range(4)),
        storage.archive(KIND, "flux-system", "other", "r", app, "x.tar.gz"),
    )

    assert most["podinfo"] == 1
    assert len({artifact.digest for artifact in results}) == 1
    assert leftovers(storage) == []
    assert os.readlink(folder(storage) / "latest.tar.gz") == "3.tar.gz"


# Garbage collection.


async def stored(storage: Storage, app: Path, count: int) -> list[Artifact]:
    """`count` artifacts, the first the oldest (a minute apart, all within a long TTL)."""
    artifacts = [await archive(storage, app, f"{i}.tar.gz") for i in range(count)]
    for i, artifact in enumerate(artifacts):
        age(storage.root / artifact.path, 60 * (count - i))
    return artifacts


async def test_garbage_collection_keeps_the_newest(tmp_path: Path, app: Path) -> None:
    storage = Storage(tmp_path / "storage", HOST, ttl=timedelta(hours=1))
    artifacts = await stored(storage, app, 5)
    (folder(storage) / "0.tar.gz.lock").write_text("")
    (folder(storage) / "4.tar.gz.lock").write_text("")

    deleted = await storage.garbage_collect(KIND, "flux-system", "podinfo", artifacts[-1])

    assert sorted(deleted) == [f"ocirepository/flux-system/podinfo/{i}.tar.gz" for i in range(3)]
    assert sorted(p.name for p in folder(storage).iterdir()) == [
        "3.tar.gz",
        "4.tar.gz",
        "4.tar.gz.lock",  # lock files are not artifacts; a deleted artifact's lock goes with it
        "latest.tar.gz",
    ]


async def test_garbage_collection_always_keeps_the_current(tmp_path: Path, app: Path) -> None:
    storage = Storage(tmp_path / "storage", HOST, keep=3, ttl=timedelta(hours=1))
    artifacts = await stored(storage, app, 5)

    deleted = await storage.garbage_collect(KIND, "flux-system", "podinfo", artifacts[0])

    assert sorted(Path(p).name for p in deleted) == ["1.tar.gz", "2.tar.gz"]
    assert sorted(p.name for p in folder(storage).glob("*.tar.gz")) == [
        "0.tar.gz",
        "3.tar.gz",
        "4.tar.gz",
        "latest.tar.gz",
    ]


async def test_garbage_collection_drops_what_outlived_the_ttl(tmp_path: Path, app: Path) -> None:
    storage = Storage(tmp_path / "storage", HOST, keep=5, ttl=timedelta(seconds=150))
    artifacts = await stored(storage, app, 5)  # ages 300, 240, 180, 120 and 60 seconds
    stale = folder(storage) / ".9.tar.gz.abc.tmp"
    stale.write_bytes(b"left by a crash")
    age(stale, 600)
    fresh = folder(storage) / ".9.tar.gz.def.tmp"
    fresh.write_bytes(b"being written")

    deleted = await storage.garbage_collect(KIND, "flux-system", "podinfo", artifacts[0])

    assert sorted(Path(p).name for p in deleted) == [
        ".9.tar.gz.abc.tmp",
        "1.tar.gz",
        "2.tar.gz",
    ]
    assert fresh.exists()
    assert (storage.root / artifacts[0].path).exists()  # current, however old


async def test_garbage_collection_without_a_folder(storage: Storage) -> None:
    current = Artifact(
        "ocirepository/flux-system/podinfo/a.tar.gz", "http://x/", "r", "", "2026-01-01T00:00:00Z"
    )
    assert await storage.garbage_collect(KIND, "flux-system", "podinfo", current) == []


@pytest.mark.parametrize(
    "path",
    [
        "ocirepository/flux-system/other/a.tar.gz",
        "gitrepository/flux-system/podinfo/a.tar.gz",
        "ocirepository/flux-system/podinfo/../podinfo/a.tar.gz",
        "/ocirepository/flux-system/podinfo/a.tar.gz",
        "ocirepository/flux-system/podinfo/latest.tar.gz",
        "",
    ],
)
async def test_garbage_collection_refuses_a_foreign_current(
    storage: Storage, app: Path, path: str
) -> None:
    await archive(storage, app, "a.tar.gz")
    current = Artifact(path, "http://x/", "r", "", "2026-01-01T00:00:00Z")

    with pytest.raises(StorageError) as caught:
        await storage.garbage_collect(KIND, "flux-system", "podinfo", current)

    assert caught.value.reason == INVALID_PATH
    assert (folder(storage) / "a.tar.gz").exists()


async def test_garbage_collection_reports_what_it_cannot_delete(
    tmp_path: Path, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path / "storage", HOST, keep=1)
    artifacts = await stored(storage, app, 2)
    real_unlink = os.unlink

    def unlink(path: str | Path) -> None:
        if str(path).endswith("0.tar.gz"):
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_unlink(path)

    monkeypatch.setattr(_storage.os, "unlink", unlink)
    with pytest.raises(StorageError) as caught:
        await storage.garbage_collect(KIND, "flux-system", "podinfo", artifacts[1])

    assert caught.value.reason == GARBAGE_COLLECTION_FAILED
    assert "0.tar.gz" in caught.value.message


def test_storage_keeps_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        Storage(tmp_path, HOST, keep=0)


# Removal.


async def test_remove_all(storage: Storage, app: Path) -> None:
    await archive(storage, app, "a.tar.gz")
    other = await storage.archive(KIND, "flux-system", "other", "r", app, "a.tar.gz")

    assert await storage.remove_all(KIND, "flux-system", "podinfo") == (
        "ocirepository/flux-system/podinfo"
    )
    assert not folder(storage).exists()
    assert await storage.verify(other)
    assert await storage.remove_all(KIND, "flux-system", "podinfo") is None


async def test_remove_all_never_leaves_the_root(storage: Storage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "podinfo").mkdir(parents=True)
    (outside / "podinfo" / "keep.txt").write_text("keep\n")
    (storage.root / "ocirepository").mkdir(parents=True)
    (storage.root / "ocirepository" / "flux-system").symlink_to(outside)

    with pytest.raises(StorageError) as caught:
        await storage.remove_all(KIND, "flux-system", "podinfo")

    assert caught.value.reason == INVALID_PATH
    assert (outside / "podinfo" / "keep.txt").exists()


async def test_remove_all_removes_only_a_symlinked_folder(storage: Storage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    storage.root.joinpath(*FOLDER[:2]).mkdir(parents=True)
    folder(storage).symlink_to(outside)

    await storage.remove_all(KIND, "flux-system", "podinfo")

    assert not folder(storage).is_symlink()
    assert (outside / "keep.txt").exists()


# Names: nothing outside the root is ever touched.


BAD_NAMES = [
    "..",
    ".",
    "",
    "a/b",
    "../etc",
    "a\0b",
    "a\nb",
    "podinfo\n",
    "Podinfo",
    "-podinfo",
    "podinfo-",
    "pod_info",
    "pod info",
    "a" * 254,
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_invalid_names_are_refused(storage: Storage, app: Path, name: str) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.archive(KIND, "flux-system", name, "r", app, "a.tar.gz")
    assert caught.value.reason == INVALID_PATH
    with pytest.raises(StorageError):
        await storage.remove_all(KIND, "flux-system", name)
    with pytest.raises(StorageError):
        storage.latest_url(KIND, "flux-system", name)
    assert not storage.root.exists()


@pytest.mark.parametrize("namespace", [*BAD_NAMES, "flux.system", "a" * 64])
async def test_invalid_namespaces_are_refused(storage: Storage, namespace: str) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.remove_all(KIND, namespace, "podinfo")
    assert caught.value.reason == INVALID_PATH


@pytest.mark.parametrize("kind", ["", "..", "OCI/Repository", "1Kind", "Kind\n", "Kin.d"])
async def test_invalid_kinds_are_refused(storage: Storage, app: Path, kind: str) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.archive(kind, "flux-system", "podinfo", "r", app, "a.tar.gz")
    assert caught.value.reason == INVALID_PATH


@pytest.mark.parametrize(
    "filename",
    [
        "",
        ".",
        "..",
        "../a.tar.gz",
        "a/b.tar.gz",
        "/a.tar.gz",
        ".hidden.tar.gz",
        "latest.tar.gz",
        "a.tar.gz.lock",
        "a.tar.gz\n",
        "a\0.tar.gz",
        "a\\b.tar.gz",
        "x" * 201,
    ],
)
async def test_invalid_file_names_are_refused(storage: Storage, app: Path, filename: str) -> None:
    with pytest.raises(StorageError) as caught:
        await archive(storage, app, filename)
    assert caught.value.reason == INVALID_PATH
    with pytest.raises(StorageError):
        await storage.copy(KIND, "flux-system", "podinfo", "r", io.BytesIO(b"x"), filename)
    assert not storage.root.exists()


def test_valid_names(storage: Storage) -> None:
    path = storage.artifact_path("HelmChart", "a" * 63, "my.chart-1", "podinfo-6.5.0+build.1.tgz")
    assert path == f"helmchart/{'a' * 63}/my.chart-1/podinfo-6.5.0+build.1.tgz"


# Existence and integrity.


async def test_verify_detects_tampering_and_absence(storage: Storage, app: Path) -> None:
    artifact = await archive(storage, app, "a.tar.gz")
    stored_file = storage.root / artifact.path

    stored_file.write_bytes(stored_file.read_bytes() + b"\0")
    assert storage.exists(artifact)
    assert not await storage.verify(artifact)

    stored_file.unlink()
    assert not storage.exists(artifact)
    assert not await storage.verify(artifact)


@pytest.mark.parametrize(
    ("path", "digest"),
    [
        ("ocirepository/flux-system/podinfo/latest.tar.gz", None),  # a link, not an artifact
        ("ocirepository/flux-system/podinfo/../podinfo/a.tar.gz", None),
        ("/ocirepository/flux-system/podinfo/a.tar.gz", None),
        ("ocirepository/flux-system/podinfo", None),
        ("OCIRepository/flux-system/podinfo/a.tar.gz", None),
        (None, ""),
        (None, "sha256:"),
        (None, "sha256:XYZ"),
        (None, "md5:d41d8cd98f00b204e9800998ecf8427e"),
        (None, "sha256:" + "0" * 64),
    ],
)
async def test_verify_and_exists_refuse_bad_artifacts(
    storage: Storage, app: Path, path: str | None, digest: str | None
) -> None:
    good = await archive(storage, app, "a.tar.gz")
    bad = Artifact(
        path if path is not None else good.path,
        good.url,
        good.revision,
        digest if digest is not None else good.digest,
        good.last_update_time,
    )

    assert not await storage.verify(bad)
    if path is not None:
        assert not storage.exists(bad)


async def test_verify_refuses_a_planted_fifo(storage: Storage, app: Path) -> None:
    good = await archive(storage, app, "a.tar.gz")
    os.mkfifo(folder(storage) / "b.tar.gz")
    planted = Artifact(
        "ocirepository/flux-system/podinfo/b.tar.gz", "", "r", good.digest, "2026-01-01T00:00:00Z"
    )

    assert not storage.exists(planted)
    assert not await asyncio.wait_for(storage.verify(planted), 5)


# URLs.


def test_urls(tmp_path: Path) -> None:
    plain = Storage(tmp_path, "source-controller.flux-system.svc")
    assert plain.url_for("/a/b.tar.gz") == "http://source-controller.flux-system.svc/a/b.tar.gz"
    secure = Storage(tmp_path, "https://artifacts.example.com/")
    assert secure.latest_url("Bucket", "ns", "b") == (
        "https://artifacts.example.com/bucket/ns/b/latest.tar.gz"
    )


# The status.artifact form.


def test_status_round_trip() -> None:
    status = {
        "path": "ocirepository/flux-system/podinfo/abc.tar.gz",
        "url": "http://host/ocirepository/flux-system/podinfo/abc.tar.gz",
        "revision": "6.5.0@sha256:abc",
        "digest": "sha256:" + "a" * 64,
        "lastUpdateTime": "2026-11-21T11:40:00Z",
        "size": 1234,
        "metadata": {"org.opencontainers.image.source": "https://github.com/stefanprodan/podinfo"},
    }

    artifact = Artifact.from_status(status)

    assert artifact.size == 1234
    assert artifact.last_update_time == "2026-11-21T11:40:00Z"
    assert artifact.to_status() == status


def test_status_leaves_out_empty_optional_fields() -> None:
    artifact = Artifact("p/n/s/a.tar.gz", "http://h/p", "r", "", "2026-11-21T11:40:00Z")

    assert artifact.to_status() == {
        "path": "p/n/s/a.tar.gz",
        "url": "http://h/p",
        "revision": "r",
        "lastUpdateTime": "2026-11-21T11:40:00Z",
    }
    assert Artifact.from_status(artifact.to_status()) == artifact


GOOD_STATUS: dict[str, object] = {
    "path": "a/b/c/d.tar.gz",
    "url": "http://h/a/b/c/d.tar.gz",
    "revision": "r",
    "lastUpdateTime": "2026-11-21T11:40:00Z",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"path": None}, "path"),
        ({"path": ""}, "path"),
        ({"url": 5}, "url"),
        ({"revision": ["r"]}, "revision"),
        ({"lastUpdateTime": None}, "lastUpdateTime"),
        ({"digest": 5}, "digest"),
        ({"size": "12"}, "size"),
        ({"size": -1}, "size"),
        ({"size": True}, "size"),
        ({"size": 1.5}, "size"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"a": 1}}, "metadata"),
    ],
)
def test_malformed_status_is_refused(change: dict[str, object], field: str) -> None:
    status = {**GOOD_STATUS, **change}
    status = {k: v for k, v in status.items() if v is not None}

    with pytest.raises(ValueError, match=f"'{field}'"):
        Artifact.from_status(status)


def test_status_that_is_not_an_object() -> None:
    with pytest.raises(ValueError, match="not an object"):
        Artifact.from_status(["path"])  # type: ignore[arg-type]
