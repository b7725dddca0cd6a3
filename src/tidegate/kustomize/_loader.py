"""Reading files of a build: only below the root, never through a symlink that leads out,
never a URL, never more than a size limit, and never running anything."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Literal, Protocol

from ._errors import KustomizeError

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "FileLoader",
    "LoadRestrictor",
    "Loader",
    "is_remote",
]

DEFAULT_MAX_FILE_SIZE = 32 * 1024 * 1024

# kustomize's --load-restrictor: with RootOnly (kustomize's default) a kustomization reads
# files only in or below its own directory; with None (what Flux builds with) anywhere below
# the build root.
LoadRestrictor = Literal["LoadRestrictionsRootOnly", "LoadRestrictionsNone"]


class Loader(Protocol):
    """What transformers and generators may read: files named relative to the kustomization
    that names them. Implementations refuse paths outside the build root and remote URLs."""

    def read_text(self, path: str) -> str: ...

    def read_bytes(self, path: str) -> bytes: ...


# What kustomize would fetch over the network (http(s) files, git repositories as
# github.com/org/repo, git@host:org/repo, ssh://, ?ref=).
_REMOTE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git::|gh:|[\w.-]+@[\w.-]+:"
    r"|(?:github\.com|gitlab\.com|bitbucket\.org|dev\.azure\.com)/)"
    r"|[?&](?:ref|version|submodules|timeout)="
)


def is_remote(path: str) -> bool:
    """Whether kustomize would read `path` from the network."""
    return _REMOTE.search(path) is not None


def _has_prefix(path: str, root: str) -> bool:
    """kustomize's ConfirmedDir.HasPrefix: `path` is `root` or below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _eval_symlinks(absolute: str) -> str:
    """filepath.EvalSymlinks, with Go's error text when a part is missing."""
    try:
        return os.path.realpath(absolute, strict=True)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KustomizeError(f"evalsymlink failure on '{absolute}' : {exc.strerror}") from None
    # Name the first component that does not exist, as Go's lstat error does.
    current = "/"
    for part in Path(absolute).parts[1:]:
        current = os.path.join(current, part)
        if not os.path.lexists(current):
            break
        if os.path.islink(current):
            current = os.path.realpath(current)
    raise KustomizeError(
        f"evalsymlink failure on '{absolute}' : lstat {current}: no such file or directory"
    )


def _confirm_dir(path: Path | str) -> str:
    """kustomize's ConfirmDir for the directory a build starts in."""
    try:
        real = _eval_symlinks(os.path.abspath(path))
    except KustomizeError as exc:
        message = str(exc).replace(f"'{os.path.abspath(path)}'", f"'{path}'", 1)
        raise KustomizeError(f"must build at directory: not a valid directory: {message}") from None
    if not os.path.isdir(real):
        raise KustomizeError(f"must build at directory: '{path}': file is not directory")
    return real


class FileLoader:
    """Loads files for one kustomization directory (`directory`), sandboxed to `root`.

    `new()` makes the loader of a nested kustomization (a base, a component), refusing
    cycles as kustomize does. Every path is resolved through its symlinks and must stay in
    or below `root`; with kustomize's default restrictor it must also stay in or below the
    directory of the kustomization that names it.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        directory: Path | str | None = None,
        load_restrictor: LoadRestrictor = "LoadRestrictionsRootOnly",
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        _referrer: FileLoader | None = None,
    ) -> None:
        self.root = _confirm_dir(root)
        start = self.root if directory is None else directory
        self.directory = _confirm_dir(start)
        if not _has_prefix(self.directory, self.root):
            raise KustomizeError(f"path '{start}' is not in or below '{self.root}'")
        self.load_restrictor = load_restrictor
        self.max_file_size = max_file_size
        self._referrer = _referrer

    def __repr__(self) -> str:
        return f"FileLoader({self.directory!r}, root={self.root!r})"

    # -- files

    def resolve_file(self, path: str) -> str:
        """The real path of a file named by the kustomization, or a KustomizeError worded as
        kustomize words it (`security; file '…' is not in or below '…'`)."""
        if is_remote(path):
            raise KustomizeError(
                f"remote file '{path}' is not allowed: only files below '{self.root}' are read"
            )
        joined = os.path.normpath(os.path.join(self.directory, path))
        real = _eval_symlinks(joined)
        if os.path.isdir(real):
            raise KustomizeError(f"'{joined}' must resolve to a file")
        parent = os.path.dirname(real)
        if self.load_restrictor == "LoadRestrictionsRootOnly" and not _has_prefix(
            parent, self.directory
        ):
            raise KustomizeError(f"security; file '{joined}' is not in or below '{self.directory}'")
        if not _has_prefix(parent, self.root):
            raise KustomizeError(f"path '{joined}' is not in or below '{self.root}'")
        return real

    def read_bytes(self, path: str) -> bytes:
        real = self.resolve_file(path)
        try:
            with open(real, "rb") as file:
                info = os.fstat(file.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise KustomizeError(f"'{path}' is not a regular file")
                if info.st_size > self.max_file_size:
                    raise KustomizeError(self._too_large(path))
                data = file.read(self.max_file_size + 1)
        except OSError as exc:
            raise KustomizeError(f"open {real}: {(exc.strerror or str(exc)).lower()}") from None
        if len(data) > self.max_file_size:
            raise KustomizeError(self._too_large(path))
        return data

    def read_text(self, path: str) -> str:
        data = self.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")

    def _too_large(self, path: str) -> str:
        return f"file '{path}' is larger than the limit of {self.max_file_size} bytes"

    def is_file(self, path: str) -> bool:
        """Whether `path` names a readable file for this loader (no error either way)."""
        try:
            self.resolve_file(path)
        except KustomizeError:
            return False
        return True

    # -- directories

    def new(self, path: str) -> FileLoader:
        """The loader of the kustomization directory `path` (kustomize's loader.New)."""
        if not path:
            raise KustomizeError("new root cannot be empty")
        if is_remote(path):
            raise KustomizeError(
                f"remote base '{path}' is not allowed: only files below '{self.root}' are read"
            )
        if os.path.isabs(path):
            raise KustomizeError(f"new root '{path}' cannot be absolute")
        joined = os.path.normpath(os.path.join(self.directory, path))
        try:
            real = _eval_symlinks(joined)
        except KustomizeError as exc:
            raise KustomizeError(f"must build at directory: not a valid directory: {exc}") from None
        if not os.path.isdir(real):
            raise KustomizeError(f"must build at directory: '{joined}': file is not directory")
        if not _has_prefix(real, self.root):
            raise KustomizeError(f"path '{joined}' is not in or below '{self.root}'")
        loader: FileLoader | None = self
        while loader is not None:
            if _has_prefix(loader.directory, real):
                raise KustomizeError(
                    f"cycle detected: candidate root '{real}' contains visited root "
                    f"'{loader.directory}'"
                )
            loader = loader._referrer
        child = FileLoader.__new__(FileLoader)
        child.root = self.root
        child.directory = real
        child.load_restrictor = self.load_restrictor
        child.max_file_size = self.max_file_size
        child._referrer = self
        return child

    def relative(self, path: str) -> str:
        """`path` (real, absolute) relative to the build root, for messages and origins."""
        return os.path.relpath(path, self.root)

    def list_directory(self, path: str = ".") -> list[tuple[str, bool]]:
        """Entries (name, is_dir) of a directory below this loader's, sorted by name as Go's
        filepath.Walk lists them; like Walk, a symlink is never a directory to descend."""
        joined = os.path.normpath(os.path.join(self.directory, path))
        real = _eval_symlinks(joined)
        if not _has_prefix(real, self.root):
            raise KustomizeError(f"path '{joined}' is not in or below '{self.root}'")
        entries = []
        for name in sorted(os.listdir(real)):
            mode = os.lstat(os.path.join(real, name)).st_mode
            entries.append((name, stat.S_ISDIR(mode)))
        return entries
