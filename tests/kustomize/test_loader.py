"""The loader: only below the root (symlinks resolved), kustomize's restrictor, no URLs, a
size limit; errors worded as kustomize's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidegate.kustomize import FileLoader, KustomizeError
from tidegate.kustomize._loader import is_remote

TREE = Path(__file__).parent / "testdata" / "loader" / "tree"


def _loader(**options: object) -> FileLoader:
    return FileLoader(TREE, directory=TREE / "app", **options)  # type: ignore[arg-type]


def test_reads_files_relative_to_the_kustomization() -> None:
    loader = _loader()
    assert loader.read_text("file.yaml") == "a: 1\n"
    assert loader.read_bytes("sub/nested.yaml") == b"b: 2\n"
    assert loader.read_text("./sub/../file.yaml") == "a: 1\n"


def test_missing_file_is_named_as_go_names_it() -> None:
    with pytest.raises(KustomizeError) as failure:
        _loader().read_text("nope/x.yaml")
    app = (TREE / "app").resolve()
    assert str(failure.value) == (
        f"evalsymlink failure on '{app}/nope/x.yaml' : lstat {app}/nope: no such file or directory"
    )


def test_dangling_symlink_is_missing() -> None:
    with pytest.raises(KustomizeError, match=r"evalsymlink failure on '.*/dangling.yaml'"):
        _loader().read_text("dangling.yaml")


def test_traversal_out_of_the_kustomization_directory_is_refused() -> None:
    app = (TREE / "app").resolve()
    with pytest.raises(KustomizeError) as failure:
        _loader().read_text("../other/file.yaml")
    assert str(failure.value) == (
        f"security; file '{app.parent}/other/file.yaml' is not in or below '{app}'"
    )


def test_symlink_to_a_file_beside_is_refused_by_kustomizes_restrictor() -> None:
    with pytest.raises(KustomizeError, match=r"security; file '.*/app/link-in.yaml' is not in"):
        _loader().read_text("link-in.yaml")
    assert _loader(load_restrictor="LoadRestrictionsNone").read_text("link-in.yaml") == "c: 3\n"


def test_symlink_out_of_the_root_is_refused_with_any_restrictor() -> None:
    for restrictor in ("LoadRestrictionsRootOnly", "LoadRestrictionsNone"):
        with pytest.raises(KustomizeError, match="is not in or below"):
            _loader(load_restrictor=restrictor).read_text("link-out.txt")
    with pytest.raises(KustomizeError, match=r"path '.*/outside.txt' is not in or below '.*/tree'"):
        _loader(load_restrictor="LoadRestrictionsNone").read_text("../../outside.txt")


def test_absolute_paths_are_checked_like_relative_ones() -> None:
    assert _loader().read_text(str(TREE / "app" / "file.yaml")) == "a: 1\n"
    with pytest.raises(KustomizeError, match="is not in or below"):
        _loader(load_restrictor="LoadRestrictionsNone").read_text("/etc/hostname")


def test_directories_are_not_files() -> None:
    with pytest.raises(KustomizeError, match=r"'.*/app/sub' must resolve to a file"):
        _loader().read_text("sub")
    assert not _loader().is_file("sub")
    assert _loader().is_file("file.yaml")


def test_size_limit() -> None:
    with pytest.raises(
        KustomizeError, match=r"file 'file.yaml' is larger than the limit of 3 bytes"
    ):
        _loader(max_file_size=3).read_text("file.yaml")
    assert _loader(max_file_size=5).read_text("file.yaml") == "a: 1\n"


def test_nested_kustomizations() -> None:
    loader = FileLoader(TREE, directory=TREE / "app")
    child = loader.new("sub")
    assert child.directory == str((TREE / "app" / "sub").resolve())
    assert child.read_text("nested.yaml") == "b: 2\n"
    sibling = loader.new("../other")  # bases beside an overlay are fine
    assert sibling.read_text("file.yaml") == "c: 3\n"
    assert loader.new("dir-link").directory == str((TREE / "other").resolve())


def test_nested_kustomization_errors() -> None:
    loader = FileLoader(TREE, directory=TREE / "app")
    app = (TREE / "app").resolve()
    with pytest.raises(KustomizeError, match="new root cannot be empty"):
        loader.new("")
    with pytest.raises(KustomizeError, match="new root '/tmp' cannot be absolute"):
        loader.new("/tmp")
    with pytest.raises(KustomizeError) as failure:
        loader.new("file.yaml")
    assert (
        str(failure.value) == f"must build at directory: '{app}/file.yaml': file is not directory"
    )
    with pytest.raises(KustomizeError, match="must build at directory: not a valid directory"):
        loader.new("nope")
    with pytest.raises(KustomizeError, match=r"path '.*/loader' is not in or below '.*/tree'"):
        loader.new("../..")


def test_cycles_are_refused() -> None:
    loader = FileLoader(TREE, directory=TREE / "app").new("sub")
    app = (TREE / "app").resolve()
    with pytest.raises(KustomizeError) as failure:
        loader.new("..")
    assert str(failure.value) == (
        f"cycle detected: candidate root '{app}' contains visited root '{app}/sub'"
    )
    with pytest.raises(KustomizeError, match="cycle detected"):
        loader.new(".")


def test_root_must_hold_the_directory() -> None:
    with pytest.raises(KustomizeError, match="is not in or below"):
        FileLoader(TREE / "app", directory=TREE / "other")


@pytest.mark.parametrize(
    "path",
    [
        "https://example.com/x.yaml",
        "http://example.com/x.yaml",
        "github.com/org/repo//dir?ref=v1",
        "git@github.com:org/repo.git",
        "ssh://git@host/org/repo",
        "git::https://host/repo",
        "file:///etc/passwd",
        "dir?ref=main",
    ],
)
def test_remote_paths(path: str) -> None:
    assert is_remote(path)
    with pytest.raises(KustomizeError, match="is not allowed"):
        _loader().read_text(path)


@pytest.mark.parametrize("path", ["base", "../base", "github.yaml", "a@b.yaml", "x/github.com"])
def test_local_paths(path: str) -> None:
    assert not is_remote(path)


def test_list_directory_does_not_follow_symlinked_directories() -> None:
    entries = dict(_loader().list_directory())
    assert entries["sub"] is True
    assert entries["dir-link"] is False
    assert list(entries) == sorted(entries)
