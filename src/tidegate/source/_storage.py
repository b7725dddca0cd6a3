"""Artifact storage: tarballs under `<root>/<kind>/<namespace>/<name>/`, as Flux's
source-controller keeps them, written atomically and garbage collected by count and age."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar

from tidegate.oci._ignore import IgnoreRules
from tidegate.oci._tarball import Entry, build, walk

# Reasons of the StorageOperationFailed condition (source-controller api/v1/condition_types.go),
# and the event reason Flux uses when garbage collection fails.
DIRECTORY_CREATION_FAILED = "DirectoryCreationFailed"
STAT_OPERATION_FAILED = "StatOperationFailed"
INVALID_PATH = "InvalidPath"
ARCHIVE_OPERATION_FAILED = "ArchiveOperationFailed"
SYMLINK_UPDATE_FAILED = "SymlinkUpdateFailed"
GARBAGE_COLLECTION_FAILED = "GarbageCollectionFailed"

LATEST = "latest.tar.gz"
LOCK_SUFFIX = ".lock"
# In-flight writes: hidden, so that neither the file server nor garbage collection takes them
# for artifacts.
_TEMP = re.compile(r"\..+\.tmp")

_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # DNS-1123 label
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")  # DNS-1123 subdomain
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_DIGEST = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)")
_CHUNK = 1 << 20

T = TypeVar("T")


class StorageError(Exception):
    """A storage operation failed; `reason` is the StorageOperationFailed condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Artifact:
    """A stored artifact, as reported in a Flux source's `status.artifact`."""

    path: str  # relative to the storage root: "<kind>/<namespace>/<name>/<file>"
    url: str
    revision: str
    digest: str  # "sha256:<hex>" of the stored file; "" when unknown
    last_update_time: str  # RFC 3339, UTC, seconds
    size: int | None = None
    metadata: dict[str, str] | None = None

    def to_status(self) -> dict[str, object]:
        """The artifact with Flux's JSON field names (empty optional fields left out)."""
        status: dict[str, object] = {
            "path": self.path,
            "url": self.url,
            "revision": self.revision,
        }
        if self.digest:
            status["digest"] = self.digest
        status["lastUpdateTime"] = self.last_update_time
        if self.size is not None:
            status["size"] = self.size
        if self.metadata:
            status["metadata"] = dict(self.metadata)
        return status

    @classmethod
    def from_status(cls, status: Mapping[str, object]) -> Artifact:
        """Read `status.artifact`; raises `ValueError` naming the first malformed field."""
        if not isinstance(status, Mapping):
            raise ValueError("artifact status is not an object")
        values: dict[str, str] = {}
        for field in ("path", "url", "revision", "lastUpdateTime"):
            value = status.get(field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"artifact status field '{field}' must be a non-empty string")
            values[field] = value
        digest = status.get("digest", "")
        if not isinstance(digest, str):
            raise ValueError("artifact status field 'digest' must be a string")
        size = status.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError("artifact status field 'size' must be a non-negative integer")
        metadata = status.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise ValueError("artifact status field 'metadata' must map strings to strings")
        return cls(
            path=values["path"],
            url=values["url"],
            revision=values["revision"],
            digest=digest,
            last_update_time=values["lastUpdateTime"],
            size=size,
            metadata=dict(metadata) if metadata is not None else None,
        )


class Storage:
    """Artifacts of source objects under `root`, advertised at `http://<advertised_host>/`.

    Every artifact lives at `<kind lowercased>/<namespace>/<name>/<file>`, beside a
    `latest.tar.gz` symlink to the newest one. Writes for one object are serialised; garbage
    collection keeps the `keep` newest artifacts younger than `ttl` (Flux's
    `--artifact-retention-records` and `--artifact-retention-ttl`), and always the current one.
    """

    def __init__(
        self,
        root: Path,
        advertised_host: str,
        *,
        keep: int = 2,
        ttl: timedelta = timedelta(seconds=60),
    ) -> None:
        if keep < 1:
            raise ValueError(f"storage must keep at least one artifact, not {keep}")
        self.root = Path(os.path.abspath(root))
        self.advertised_host = advertised_host.rstrip("/")
        self.keep = keep
        self.ttl = ttl
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def artifact_path(self, kind: str, namespace: str, name: str, filename: str) -> str:
        """The relative path of an object's artifact; raises `StorageError` for invalid names."""
        return "/".join((*_object_parts(kind, namespace, name), _check_filename(filename)))

    def url_for(self, path: str) -> str:
        """The URL the artifact server answers `path` (relative to the root) at."""
        host = self.advertised_host
        if not host.startswith(("http://", "https://")):
            host = f"http://{host}"
        return f"{host}/{path.lstrip('/')}"

    def latest_url(self, kind: str, namespace: str, name: str) -> str:
        """The URL of an object's `latest.tar.gz`, for the source's `status.url`."""
        return self.url_for("/".join((*_object_parts(kind, namespace, name), LATEST)))

    def exists(self, artifact: Artifact) -> bool:
        """Whether the artifact's file is in storage (a regular file, not a link)."""
        local = self._local(artifact.path)
        if local is None:
            return False
        try:
            return stat.S_ISREG(os.lstat(local).st_mode)
        except OSError:
            return False

    async def verify(self, artifact: Artifact) -> bool:
        """Whether the artifact's file is in storage and matches `artifact.digest`."""
        match = _DIGEST.fullmatch(artifact.digest)
        local = self._local(artifact.path)
        if match is None or local is None:
            return False
        algorithm, expected = match.groups()
        actual = await _in_thread(_hash_file, local, algorithm)
        return actual == expected

    async def archive(
        self,
        kind: str,
        namespace: str,
        name: str,
        revision: str,
        source_dir: Path,
        filename: str,
        *,
        ignore: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Artifact:
        """Archive `source_dir` reproducibly as the object's artifact `filename`.

        Left out, as Flux's source-controller does it: the patterns of `.sourceignore` files
        and the gitignore-syntax `ignore` text (a source's `spec.ignore`, which takes
        precedence) on top of the VCS defaults — or, when there are none, Flux's full default
        list. Symlinks and special files are not archived, as in Flux.
        """
        parts = _object_parts(kind, namespace, name)
        filename = _check_filename(filename)

        def write(temp: _TempFile) -> None:
            build(_entries(Path(source_dir), ignore), temp)

        return await self._store(parts, filename, revision, metadata, _threaded(write))

    async def copy(
        self,
        kind: str,
        namespace: str,
        name: str,
        revision: str,
        source: Path | BinaryIO | AsyncIterable[bytes],
        filename: str,
        *,
        metadata: Mapping[str, str] | None = None,
        max_size: int | None = None,
    ) -> Artifact:
        """Store a tarball as it is (a file, a binary stream or async chunks) as `filename`.

        Refuses to store more than `max_size` bytes when it is given.
        """
        parts = _object_parts(kind, namespace, name)
        filename = _check_filename(filename)
        if isinstance(source, AsyncIterable):
            return await self._store(
                parts, filename, revision, metadata, _stream_from(source, max_size)
            )

        def write(temp: _TempFile) -> None:
            if isinstance(source, Path):
                with open(source, "rb") as handle:
                    _copy(handle, temp, max_size)
            else:
                _copy(source, temp, max_size)

        return await self._store(parts, filename, revision, metadata, _threaded(write))

    async def garbage_collect(
        self, kind: str, namespace: str, name: str, current: Artifact
    ) -> list[str]:
        """Delete the object's old artifacts; return their paths (relative to the root).

        Kept: `current`, and the newest others younger than the TTL up to `keep` in all.
        Left alone: `latest.tar.gz` and lock files (a deleted artifact's lock file goes too).
        """
        parts = _object_parts(kind, namespace, name)
        current_parts = _split_path(current.path)
        if current_parts is None or current_parts[:3] != parts:
            raise StorageError(
                INVALID_PATH,
                f"current artifact '{current.path}' is not an artifact of '{'/'.join(parts)}'",
            )
        async with self._lock(parts):
            return await _in_thread(self._collect, parts, current_parts[3])

    async def remove_all(self, kind: str, namespace: str, name: str) -> str | None:
        """Delete all of an object's artifacts (when the object is deleted).

        Returns the removed folder's path (relative to the root), or None if there was none.
        """
        parts = _object_parts(kind, namespace, name)
        async with self._lock(parts):
            return await _in_thread(self._remove_folder, parts)

    def _lock(self, parts: tuple[str, str, str]) -> asyncio.Lock:
        lock = self._locks.get(parts)
        if lock is None:
            lock = self._locks[parts] = asyncio.Lock()
        return lock

    def _local(self, path: str) -> Path | None:
        """The file of a relative artifact path, or None if the path is not a valid one."""
        parts = _split_path(path)
        if parts is None:
            return None
        folder = self._folder(parts[:3])
        if folder is None or not folder.is_dir():
            return None
        return folder / parts[3]

    def _folder(self, parts: tuple[str, str, str]) -> Path | None:
        """The object's folder if no symlink is on the way to it from the root."""
        real_root = Path(os.path.realpath(self.root))
        folder = real_root.joinpath(*parts)
        if Path(os.path.realpath(folder)) != folder:
            return None
        return folder

    async def _store(
        self,
        parts: tuple[str, str, str],
        filename: str,
        revision: str,
        metadata: Mapping[str, str] | None,
        fill: Callable[[_TempFile], Awaitable[None]],
    ) -> Artifact:
        path = "/".join((*parts, filename))
        async with self._lock(parts):
            folder = await _in_thread(self._make_folder, parts)
            temp = await _in_thread(_TempFile.create, folder, filename)
            try:
                await fill(temp)
                await _in_thread(temp.commit)
            except BaseException as exc:
                temp.discard()
                if isinstance(exc, StorageError) or not isinstance(exc, Exception):
                    raise
                raise StorageError(
                    ARCHIVE_OPERATION_FAILED,
                    f"failed to write artifact '{path}': {_cause(exc)}",
                ) from exc
            try:
                await _in_thread(_point_latest, folder, filename)
            except OSError as exc:
                raise StorageError(
                    SYMLINK_UPDATE_FAILED,
                    f"failed to point '{'/'.join((*parts, LATEST))}' at '{filename}': "
                    f"{_cause(exc)}",
                ) from exc
        return Artifact(
            path=path,
            url=self.url_for(path),
            revision=revision,
            digest=f"sha256:{temp.sha256.hexdigest()}",
            last_update_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            size=temp.size,
            metadata=dict(metadata) if metadata else None,
        )

    def _make_folder(self, parts: tuple[str, str, str]) -> Path:
        """Create the object's folder one level at a time, never through a symlink."""
        folder = Path(os.path.realpath(self.root))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for part in parts:
                folder = folder / part
                with contextlib.suppress(FileExistsError):
                    folder.mkdir(mode=0o755)
                if not stat.S_ISDIR(os.lstat(folder).st_mode):
                    raise StorageError(
                        DIRECTORY_CREATION_FAILED,
                        f"failed to create artifact folder '{'/'.join(parts)}': "
                        f"'{folder}' is not a folder",
                    )
        except OSError as exc:
            raise StorageError(
                DIRECTORY_CREATION_FAILED,
                f"failed to create artifact folder '{'/'.join(parts)}': {_cause(exc)}",
            ) from exc
        return folder

    def _collect(self, parts: tuple[str, str, str], current: str) -> list[str]:
        folder = self._folder(parts)
        if folder is None or not folder.is_dir():
            return []
        now = time.time_ns()
        ttl = int(self.ttl.total_seconds() * 1e9)
        artifacts: list[tuple[int, str]] = []
        garbage: list[str] = []
        try:
            with os.scandir(folder) as found:
                for entry in found:
                    if not entry.is_file(follow_symlinks=False):
                        continue  # latest.tar.gz, folders
                    mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                    if _TEMP.fullmatch(entry.name):
                        if now - mtime > ttl:
                            garbage.append(entry.name)  # left by a crash mid-write
                    elif not entry.name.endswith(LOCK_SUFFIX) and entry.name != current:
                        artifacts.append((mtime, entry.name))
        except OSError as exc:
            raise StorageError(
                GARBAGE_COLLECTION_FAILED,
                f"failed to list artifacts in '{'/'.join(parts)}': {_cause(exc)}",
            ) from exc
        # The current artifact takes one of the places whether or not it is the newest.
        places = self.keep - (1 if (folder / current).is_file() else 0)
        for mtime, filename in sorted(artifacts, reverse=True):
            if places > 0 and now - mtime <= ttl:
                places -= 1
            else:
                garbage.append(filename)
        deleted: list[str] = []
        failures: list[str] = []
        for filename in garbage:
            try:
                os.unlink(folder / filename)
            except FileNotFoundError:
                continue
            except OSError as exc:
                failures.append(f"'{filename}': {_cause(exc)}")
                continue
            deleted.append("/".join((*parts, filename)))
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(folder / (filename + LOCK_SUFFIX))
        if failures:
            raise StorageError(
                GARBAGE_COLLECTION_FAILED,
                f"failed to delete old artifacts of '{'/'.join(parts)}': {', '.join(failures)}",
            )
        return deleted

    def _remove_folder(self, parts: tuple[str, str, str]) -> str | None:
        relative = "/".join(parts)
        real_root = Path(os.path.realpath(self.root))
        folder = real_root.joinpath(*parts)
        try:
            if Path(os.path.realpath(folder.parent)) != folder.parent:
                raise StorageError(
                    INVALID_PATH,
                    f"refusing to remove '{relative}': a symlink leads out of the storage root",
                )
            mode = os.lstat(folder).st_mode
            if stat.S_ISDIR(mode):
                shutil.rmtree(folder)
            else:
                os.unlink(folder)  # a symlink or file where the folder belongs: only it goes
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(
                GARBAGE_COLLECTION_FAILED, f"failed to remove '{relative}': {_cause(exc)}"
            ) from exc
        return relative


class _TempFile:
    """A hidden file beside the artifact it becomes, hashed and counted as it is written."""

    def __init__(self, folder: Path, filename: str, fd: int, temp: str) -> None:
        self.target = folder / filename
        self.temp = temp
        self.handle = os.fdopen(fd, "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    @classmethod
    def create(cls, folder: Path, filename: str) -> _TempFile:
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise StorageError(
                ARCHIVE_OPERATION_FAILED,
                f"failed to create a file in '{folder}': {_cause(exc)}",
            ) from exc
        return cls(folder, filename, fd, temp)

    def write(self, data: bytes, /) -> int:
        self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass  # commit() flushes and syncs once, at the end

    def commit(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.temp, 0o644)
        os.replace(self.temp, self.target)
        _sync_folder(self.target.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


def _entries(root: Path, ignore: str | None) -> list[Entry]:
    """What goes into an archive of `root`: regular files and folders, ignored paths left out."""
    root = root.resolve()
    if not root.is_dir():
        raise StorageError(STAT_OPERATION_FAILED, f"invalid source folder '{root}'")
    try:
        rules = IgnoreRules.for_storage(root, ignore)
    except (ValueError, re.error) as exc:
        raise StorageError(
            ARCHIVE_OPERATION_FAILED, f"invalid ignore rules for '{root}': {exc}"
        ) from exc
    return walk(root, rules=rules)


def _threaded(write: Callable[[_TempFile], None]) -> Callable[[_TempFile], Awaitable[None]]:
    async def fill(temp: _TempFile) -> None:
        await _in_thread(write, temp)

    return fill


def _copy(source: BinaryIO, temp: _TempFile, max_size: int | None) -> None:
    while chunk := source.read(_CHUNK):
        _check_size(temp.size + len(chunk), max_size)
        temp.write(chunk)


def _stream_from(
    source: AsyncIterable[bytes], max_size: int | None
) -> Callable[[_TempFile], Awaitable[None]]:
    async def write(temp: _TempFile) -> None:
        async for chunk in source:
            _check_size(temp.size + len(chunk), max_size)
            await _in_thread(temp.write, bytes(chunk))

    return write


def _check_size(size: int, max_size: int | None) -> None:
    if max_size is not None and size > max_size:
        raise ValueError(f"larger than the maximum of {max_size} bytes")


def _point_latest(folder: Path, filename: str) -> None:
    """Replace `latest.tar.gz` atomically with a relative link to `filename`."""
    link = folder / LATEST
    temp = folder / f".{LATEST}.{os.urandom(6).hex()}.tmp"
    os.symlink(filename, temp)
    try:
        os.replace(temp, link)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: Path, algorithm: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.new(algorithm)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def _in_thread(func: Callable[..., T], *args: object) -> T:
    """Run blocking file work in a thread; if cancelled, wait for the thread to finish first,
    so that the object's lock covers all of it."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller sees
        raise


def _object_parts(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise StorageError(INVALID_PATH, f"invalid kind '{kind}'")
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise StorageError(INVALID_PATH, f"invalid namespace '{namespace}'")
    if not isinstance(name, str) or len(name) > 253 or not _NAME.fullmatch(name):
        raise StorageError(INVALID_PATH, f"invalid name '{name}'")
    return kind.lower(), namespace, name


def _check_filename(filename: str) -> str:
    if (
        not isinstance(filename, str)
        or not _FILENAME.fullmatch(filename)
        or filename == LATEST
        or filename.endswith(LOCK_SUFFIX)
    ):
        raise StorageError(INVALID_PATH, f"invalid artifact file name '{filename}'")
    return filename


def _split_path(path: str) -> tuple[str, str, str, str] | None:
    """(kind, namespace, name, file) of a valid relative artifact path, else None."""
    if not isinstance(path, str):
        return None
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != parts[0].lower():
        return None
    try:
        kind, namespace, name = _object_parts(*parts[:3])
        return kind, namespace, name, _check_filename(parts[3])
    except StorageError:
        return None


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" '{exc.filename}'" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__
