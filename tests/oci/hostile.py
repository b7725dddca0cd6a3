"""Hand-crafted malicious or broken tar+gzip archives, for extraction and pull tests."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def bomb(uncompressed: int) -> bytes:
    """One file of `uncompressed` zero bytes: a few hundred kilobytes compressed per 100 MB."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = uncompressed
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(info, _Zeros(uncompressed))
    return raw.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n

    def readable(self) -> bool:
        return True


# name → (archive bytes, words the refusal must contain)
HOSTILE: dict[str, Callable[[], tuple[bytes, str]]] = {
    "dotdot": lambda: (archive(regular("ok.yaml"), regular("../evil.yaml")), "outside"),
    "nested-dotdot": lambda: (archive(regular("a/../../evil.yaml")), "outside"),
    "absolute": lambda: (archive(regular("/tmp/evil.yaml")), "absolute path"),
    "symlink-out": lambda: (
        archive(special("link", tarfile.SYMTYPE, "../../etc"), regular("link/passwd")),
        "points outside",
    ),
    "symlink-absolute": lambda: (
        archive(special("link", tarfile.SYMTYPE, "/etc/passwd")),
        "absolute path",
    ),
    "symlink-chain": lambda: (
        archive(
            special("sub/up", tarfile.SYMTYPE, ".."),
            special("sub/escape", tarfile.SYMTYPE, "up/.."),
        ),
        "leads outside",
    ),
    "hardlink-out": lambda: (
        archive(special("hard", tarfile.LNKTYPE, "../../etc/passwd")),
        "outside",
    ),
    "device": lambda: (archive(special("dev", tarfile.CHRTYPE)), "device file"),
    "fifo": lambda: (archive(special("pipe", tarfile.FIFOTYPE)), "FIFO"),
    "not-gzip": lambda: (b"PK\x03\x04 this is a zip, not a tarball", "invalid tar+gzip"),
    "truncated": lambda: (archive(regular("a.yaml", b"y" * 5000))[:60], "invalid tar+gzip"),
}
