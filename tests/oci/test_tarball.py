"""Reproducible archives and safe extraction (no services needed)."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from tidegate.oci import UnsafeArchive, build_layer
from tidegate.oci._tarball import extract, walk

from .hostile import HOSTILE, archive, bomb, regular, special, tar

APP = Path(__file__).parent / "testdata" / "app"


def names(root: Path, ignore: list[str] | None = None) -> list[str]:
    return [e.name + ("/" if e.is_dir else "") for e in walk(root, ignore)]


def test_walk_applies_defaults_and_sourceignore_files() -> None:
    assert names(APP) == [
        ".sourceignore",
        "KEEP.md",
        "base/",
        "base/deployment.yaml",
        "base/kustomization.yaml",
        "hook.sh",
        "overlays/",
        "overlays/prod/",
        "overlays/prod/.sourceignore",
        "overlays/prod/kustomization.yaml",
    ]  # logo.png: default list; NOTES.md: root .sourceignore; secrets.env: nested one


def test_ignore_paths_replace_the_defaults() -> None:
    listed = names(APP, ["base/", "*.sh"])
    assert "logo.png" in listed  # the default list no longer applies
    assert not any(n.startswith("base") for n in listed)
    assert "hook.sh" not in listed
    assert "NOTES.md" not in listed  # .sourceignore files still do


def test_layer_is_reproducible_and_normalised(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(APP, copy)
    os.utime(copy / "base" / "deployment.yaml", (1, 1))  # other times, same content
    (copy / "base" / "kustomization.yaml").chmod(0o600)  # other mode bits than 644
    first, second = io.BytesIO(), io.BytesIO()
    digest_a, size_a = build_layer(APP, first)
    digest_b, size_b = build_layer(copy, second)
    assert (digest_a, size_a) == (digest_b, size_b)
    assert first.getvalue() == second.getvalue()

    raw = first.getvalue()
    assert raw[3] == 0  # gzip flags: no file name
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        members = tar.getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    modes = {m.name: m.mode for m in members}
    assert modes["base"] == 0o755
    assert modes["hook.sh"] == 0o755
    assert modes["base/kustomization.yaml"] == 0o644
    assert all(not m.name.startswith(("/", "./")) for m in members)


def test_symlinks_skipped_unless_resolved_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(APP / "base", root)
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: outside\n")
    (root / "inner-link.yaml").symlink_to("deployment.yaml")
    (root / "outer-link.yaml").symlink_to(outside)
    assert names(root) == ["deployment.yaml", "kustomization.yaml"]
    resolved = walk(root, resolve_symlinks=True)
    assert [e.name for e in resolved] == [
        "deployment.yaml",
        "inner-link.yaml",
        "kustomization.yaml",
    ]
    assert resolved[1].source == (root / "deployment.yaml").resolve()


def test_extract_round_trip_keeps_contents(tmp_path: Path) -> None:
    layer = io.BytesIO()
    build_layer(APP, layer)
    layer.seek(0)
    out = tmp_path / "out"
    out.mkdir()
    files = extract(layer, out)
    assert "base/deployment.yaml" in files
    for name in files:
        assert (out / name).read_bytes() == (APP / name).read_bytes()
    assert os.access(out / "hook.sh", os.X_OK)


def test_links_inside_are_kept(tmp_path: Path) -> None:
    data = archive(
        regular("a/real.yaml", b"kind: X\n"),
        special("a/soft.yaml", tarfile.SYMTYPE, "real.yaml"),
        special("hard.yaml", tarfile.LNKTYPE, "a/real.yaml"),
    )
    out = tmp_path / "out"
    out.mkdir()
    extract(io.BytesIO(data), out)
    assert (out / "a" / "soft.yaml").read_bytes() == b"kind: X\n"
    assert os.readlink(out / "a" / "soft.yaml") == "real.yaml"
    assert (out / "hard.yaml").read_bytes() == b"kind: X\n"
    assert not (out / "hard.yaml").is_symlink()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(case: str, tmp_path: Path) -> None:
    data, words = HOSTILE[case]()
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    with pytest.raises(UnsafeArchive, match=re.escape(words)):
        extract(io.BytesIO(data), out)
    assert not (tmp_path / "deep" / "evil.yaml").exists()
    assert not (tmp_path / "evil.yaml").exists()


def test_writing_through_an_inside_symlink_to_a_folder_outside_is_refused(tmp_path: Path) -> None:
    # A link that looks harmless inside, then an entry written "through" it.
    data = archive(special("dir", tarfile.SYMTYPE, "."), regular("dir/../../x", b"boom"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchive):
        extract(io.BytesIO(data), out)
    assert not (tmp_path / "x").exists()


def test_archive_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    data = bomb(50 << 20)
    assert len(data) < 200_000
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchive, match="maximum of 10485760 bytes"):
        extract(io.BytesIO(data), out, max_size=10 << 20)
    assert list(out.iterdir()) == []  # refused from the header, before writing anything


def test_single_file_and_broken_tarball_inputs(tmp_path: Path) -> None:
    single = tmp_path / "configmap.yaml"
    single.write_text("kind: ConfigMap\n")
    layer = io.BytesIO()
    build_layer(single, layer)
    layer.seek(0)
    with tarfile.open(fileobj=layer, mode="r:gz") as tar:
        assert tar.getnames() == ["configmap.yaml"]

    broken = tmp_path / "bundle.tgz"
    broken.write_bytes(HOSTILE["truncated"]()[0])
    from tidegate.oci import ArtifactError

    with pytest.raises(ArtifactError, match=r"bundle\.tgz': invalid tar\+gzip archive"):
        build_layer(broken, io.BytesIO())
    with pytest.raises(ArtifactError, match="no such file or folder"):
        build_layer(tmp_path / "absent", io.BytesIO())


@pytest.mark.parametrize(
    "form",
    [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT],
    ids=["pax", "gnu", "ustar"],
)
def test_long_names_in_every_tar_format(form: int, tmp_path: Path) -> None:
    # 100+ character names: PAX records, GNU long-name entries, or the ustar prefix field.
    deep = "/".join(["folder-" + "x" * 20] * 6) + "/manifest-with-a-long-name.yaml"
    # ustar has no long link names; PAX and GNU do.
    target = "plain.yaml" if form == tarfile.USTAR_FORMAT else deep
    link = special("short-link.yaml", tarfile.SYMTYPE, target)
    raw = tar(regular(deep, b"kind: Deep\n"), link, regular("plain.yaml", b"a" * 700), form=form)
    out = tmp_path / "out"
    out.mkdir()
    assert extract(io.BytesIO(gzip.compress(raw)), out) == [deep, "plain.yaml"]
    assert (out / deep).read_bytes() == b"kind: Deep\n"
    assert os.readlink(out / "short-link.yaml") == target
    assert (out / "plain.yaml").read_bytes() == b"a" * 700


def test_concatenated_gzip_members_and_trailing_zeros_are_read(tmp_path: Path) -> None:
    # `cat a.gz b.gz` is one valid gzip stream; registries and tools pad with zeros.
    raw = tar(regular("a.yaml", b"first\n" * 1000), regular("b.yaml", b"second\n"))
    data = gzip.compress(raw[:3000]) + gzip.compress(raw[3000:]) + bytes(1024)
    out = tmp_path / "out"
    out.mkdir()
    assert extract(io.BytesIO(data), out) == ["a.yaml", "b.yaml"]
    assert (out / "a.yaml").read_bytes() == b"first\n" * 1000
    assert (out / "b.yaml").read_bytes() == b"second\n"


def test_old_style_folder_entries_and_root_entry(tmp_path: Path) -> None:
    # Pre-POSIX tars mark a folder as a regular entry whose name ends in a slash.
    folder = tarfile.TarInfo("conf/")
    folder.type = tarfile.AREGTYPE
    root = tarfile.TarInfo("./")
    root.type = tarfile.DIRTYPE
    raw = tar(
        (root, None), (folder, None), regular("conf/app.yaml", b"v: 1\n"), form=tarfile.GNU_FORMAT
    )
    out = tmp_path / "out"
    out.mkdir()
    assert extract(io.BytesIO(gzip.compress(raw)), out) == ["conf/app.yaml"]
    assert (out / "conf").is_dir()


def test_extract_matches_tarfile_on_a_large_tree(tmp_path: Path) -> None:
    # Files spanning the reader's internal chunk boundaries come out byte-identical.
    tree = tmp_path / "tree"
    for i in range(60):
        (tree / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 7}" / f"f{i}.bin").write_bytes(os.urandom(37_000 * (i % 5) + i))
    layer = io.BytesIO()
    build_layer(tree, layer)
    layer.seek(0)
    out = tmp_path / "out"
    out.mkdir()
    files = extract(layer, out)
    layer.seek(0)
    with tarfile.open(fileobj=layer, mode="r:gz") as reference:
        expected = [m.name for m in reference.getmembers() if m.isfile()]
    assert files == expected
    for name in files:
        assert (out / name).read_bytes() == (tree / name).read_bytes()
