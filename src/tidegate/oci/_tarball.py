"""Reproducible tar+gzip of a directory, and extraction that cannot escape its destination."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ._errors import UnsafeArchive
from ._ignore import IgnoreRules
from ._tarstream import DIRECTORY, FILE, HARDLINK, SYMLINK, Member, Readable, TarStream

# Archive bombs stop here unless the caller allows more (flag `--max-size`).
DEFAULT_MAX_SIZE = 1 << 30  # 1 GiB uncompressed


class Writable(Protocol):
    """Where an archive is written: a file, or anything else that takes bytes."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Entry:
    """A file or folder as it goes into the archive."""

    name: str  # forward-slash path relative to the root; folders end without a slash
    source: Path
    is_dir: bool
    executable: bool = False


def walk(
    root: Path,
    ignore_paths: Sequence[str] | None = None,
    *,
    resolve_symlinks: bool = False,
    rules: IgnoreRules | None = None,
) -> list[Entry]:
    """The entries of `root` in archive order: sorted by name, ignored paths left out.

    Symlinks are skipped, unless `resolve_symlinks` is set and they point inside `root`: then
    the target's content is archived under the link's name. `rules`, when given, replace the
    ones `ignore_paths` would make.
    """
    root = root.resolve()
    if rules is None:
        rules = IgnoreRules(root, ignore_paths)
    entries: list[Entry] = []

    def visit(folder: Path, prefix: str) -> None:
        for child in sorted(folder.iterdir(), key=lambda p: p.name):
            name = f"{prefix}{child.name}"
            source = child
            if child.is_symlink():
                if not resolve_symlinks:
                    continue
                target = child.resolve()
                if not target.is_relative_to(root) or not target.exists():
                    continue
                source = target
            if source.is_dir():
                if rules.ignored(name, is_dir=True):
                    continue
                entries.append(Entry(name, source, True))
                visit(source, name + "/")
            elif source.is_file() and not rules.ignored(name):
                mode = source.stat().st_mode
                entries.append(Entry(name, source, False, bool(mode & 0o111)))

    visit(root, "")
    return entries


def build(entries: Sequence[Entry], out: Writable) -> None:
    """Write `entries` as tar+gzip to `out`, byte-for-byte the same on every run and machine.

    Owner and group are 0 with empty names, times are zero, modes are normalised (0755 for
    folders and executables, 0644 otherwise), and the gzip header carries no name or time.
    """
    import gzip  # here: extraction, what pulls need, runs on `_tarstream` alone
    import tarfile

    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=3) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info.mode = 0o755 if entry.executable else 0o644
            with open(entry.source, "rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)


def walk_file(path: Path) -> list[Entry]:
    """A single file as the only entry of an archive."""
    return [Entry(path.name, path, False, bool(path.stat().st_mode & 0o111))]


def check_archive(archive: BinaryIO) -> None:
    """Read a tar+gzip stream to its end, raising `UnsafeArchive` if it is not one."""
    import gzip
    import tarfile

    try:
        with tarfile.open(fileobj=archive, mode="r|gz") as tar:
            for _ in tar:
                pass
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnsafeArchive(f"invalid tar+gzip archive: {exc}") from exc


def build_directory(
    root: Path,
    out: Writable,
    ignore_paths: Sequence[str] | None = None,
    *,
    resolve_symlinks: bool = False,
) -> None:
    build(walk(root, ignore_paths, resolve_symlinks=resolve_symlinks), out)


def extract(archive: Readable, destination: Path, *, max_size: int = DEFAULT_MAX_SIZE) -> list[str]:
    """Extract a tar+gzip stream into the empty folder `destination`; return the file names.

    Refuses (with `UnsafeArchive`) absolute names and `..`, links leading outside, device
    files and FIFOs, and archives whose files add up to more than `max_size` bytes.
    Symlinks and hard links that stay inside are kept (a hard link as a copy). No path is ever
    written through a symlink.
    """
    try:
        with TarStream(archive) as stream:
            return _Extraction(destination.resolve(), max_size).run(stream)
    except UnsafeArchive:
        raise
    except OSError as exc:
        raise UnsafeArchive(f"cannot extract archive: {exc}") from exc


class _Extraction:
    """Paths are handled as strings, not `Path`s: per entry, pathlib's joins, parents and
    hashes cost more than writing a small file does."""

    def __init__(self, root: Path, max_size: int) -> None:
        self.root = str(root)
        self.prefix = self.root.rstrip("/") + "/"
        self.max_size = max_size
        self.total = 0
        # Folders known to be real folders inside the root (made or checked here): paths
        # below them need no further symlink checks.
        self.folders: set[str] = {self.root}
        self.symlinks: list[tuple[str, str]] = []

    def run(self, tar: TarStream) -> list[str]:
        files: list[str] = []
        for member in tar:
            name = _safe_name(member.name)
            if name is None:
                continue  # the archive root itself ("." or "./")
            target = self.prefix + name
            if member.kind == FILE:
                self.total += member.size
                if self.total > self.max_size:
                    raise UnsafeArchive(
                        f"archive expands beyond the maximum of {self.max_size} bytes"
                    )
                self.folder(_parent(target))
                self.write(target, tar.chunks(), member.mode)
                files.append(name)
            elif member.kind == DIRECTORY:
                self.folder(target)
            elif member.kind == SYMLINK:
                self.symlink(target, member)
            elif member.kind == HARDLINK:
                self.hard_link(target, member)
                files.append(name)
            else:
                raise UnsafeArchive(f"archive entry '{member.name}' is a {member.kind}")
        # Each link points inside on its own, but a chain of them may not (`a/b -> ..`,
        # `a/c -> b/..`): check where they lead once all exist.
        for link, name in self.symlinks:
            if not self.contains(os.path.realpath(link)):
                raise UnsafeArchive(f"symlink '{name}' leads outside the destination")
        return files

    def contains(self, path: str) -> bool:
        return path == self.root or path.startswith(self.prefix)

    def relative(self, path: str) -> str:
        return path[len(self.prefix) :]

    def is_inside(self, folder: str) -> bool:
        """Whether `folder` is a real folder inside the root (no symlink on the way)."""
        if folder in self.folders:
            return True
        if folder == self.root or not self.contains(folder):
            return False
        if not self.is_inside(_parent(folder)) or not _is_real_folder(folder):
            return False
        self.folders.add(folder)
        return True

    def folder(self, target: str) -> None:
        if target in self.folders:
            return
        self.folder(_parent(target))
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            os.mkdir(target, 0o755)
        else:
            if stat.S_ISLNK(info.st_mode):
                raise UnsafeArchive(f"archive writes through the symlink '{self.relative(target)}'")
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeArchive(f"archive entry '{self.relative(target)}' is not a folder")
        self.folders.add(target)

    def write(self, target: str, data: Iterable[bytes | memoryview], mode: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        try:
            fd = os.open(target, flags, 0o755 if mode & 0o111 else 0o644)
        except OSError as exc:
            raise UnsafeArchive(
                f"cannot write archive entry '{self.relative(target)}': {exc.strerror}"
            ) from exc
        try:
            for piece in data:
                while piece:
                    piece = piece[os.write(fd, piece) :]
        finally:
            os.close(fd)

    def hard_link(self, target: str, member: Member) -> None:
        """A hard link inside the archive becomes a copy of the file it names."""
        linked = _safe_name(member.linkname)
        source = self.prefix + linked if linked else self.root
        if linked is None or not self.is_inside(_parent(source)):
            raise UnsafeArchive(
                f"hard link '{member.name}' points outside the destination: '{member.linkname}'"
            )
        try:
            info = os.lstat(source)
        except FileNotFoundError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            raise UnsafeArchive(
                f"hard link '{member.name}' points to a missing or special file: "
                f"'{member.linkname}'"
            )
        self.folder(_parent(target))
        with open(source, "rb") as copied:
            self.write(target, iter(lambda: copied.read(1 << 20), b""), member.mode)

    def symlink(self, target: str, member: Member) -> None:
        self.folder(_parent(target))
        link = member.linkname
        if link.startswith("/"):
            raise UnsafeArchive(f"symlink '{member.name}' points to an absolute path '{link}'")
        resolved = os.path.normpath(os.path.join(_parent(target), link))
        if not self.contains(resolved):
            raise UnsafeArchive(f"symlink '{member.name}' points outside the destination: '{link}'")
        if os.path.lexists(target):
            raise UnsafeArchive(f"archive entry '{member.name}' is duplicated")
        os.symlink(link, target)
        self.symlinks.append((target, member.name))


def _parent(path: str) -> str:
    return path[: path.rindex("/")] or "/"


def _is_real_folder(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _safe_name(name: str) -> str | None:
    if name.startswith("/"):
        raise UnsafeArchive(f"archive entry '{name}' has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"archive entry '{name}' points outside the destination ('..')")
    return "/".join(parts) or None


def staging_dir(output: Path) -> Path:
    """An empty temporary folder on the same filesystem as `output`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))


def move_into_place(staged: Path, output: Path) -> None:
    """Move a complete, verified extraction to `output` (merging into an existing folder)."""
    if not output.exists():
        staged.rename(output)
        return
    if not output.is_dir():
        raise FileExistsError(f"'{output}' exists and is not a folder")
    for child in staged.iterdir():
        destination = output / child.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        child.rename(destination)
    staged.rmdir()


def file_entries(root: Path) -> Iterator[tuple[str, Path]]:
    """Every regular file below `root` as (relative name, path), not following symlinks."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                yield path.relative_to(root).as_posix(), path
