"""Hand-crafted malicious or broken tar+gzip archives, for extraction and pull tests."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable


def tar(*members: tuple[tarfile.TarInfo, bytes | None], form: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar in the given format (PAX, GNU or ustar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=form) as out:
        for info, data in members:
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    return gzip.compress(tar(*members), mtime=0)


def corrupt_checksum(raw: bytes) -> bytes:
    """The tar with its first header's checksum field wrong."""
    return raw[:148] + b"0000001\0" + raw[156:]


def with_pax_record(raw: bytes, record: bytes) -> bytes:
    """A PAX extended header holding `record` put in front of the tar `raw`."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(record)
    header = info.tobuf(tarfile.USTAR_FORMAT)
    return header + record + bytes(-len(record) % 512) + raw


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
    "truncated-in-data": lambda: (
        gzip.compress(tar(regular("a.yaml", b"y" * 5000))[:2048], mtime=0),
        "unexpected end of data",
    ),
    "bad-checksum": lambda: (
        gzip.compress(corrupt_checksum(tar(regular("a.yaml"))), mtime=0),
        "checksum mismatch",
    ),
    "gzip-crc": lambda: (
        (lambda z: z[:-8] + bytes(4) + z[-4:])(archive(regular("a.yaml"))),
        "invalid tar+gzip",
    ),
    "sparse": lambda: (archive(special("holes.bin", tarfile.GNUTYPE_SPARSE)), "sparse file"),
    "unknown-type": lambda: (archive(special("volume", b"V")), "unsupported type 'V'"),
    "huge-pax-header": lambda: (
        gzip.compress(with_pax_record(tar(regular("a.yaml")), b"x" * (2 << 20)), mtime=0),
        "extended header of 2097152 bytes",
    ),
    "malformed-pax": lambda: (
        gzip.compress(with_pax_record(tar(regular("a.yaml")), b"99 path=x\n"), mtime=0),
        "malformed PAX record",
    ),
    "pax-path-escape": lambda: (
        gzip.compress(with_pax_record(tar(regular("a.yaml")), b"21 path=../evil.yaml\n"), mtime=0),
        "outside",
    ),
    "empty": lambda: (b"", "invalid tar+gzip"),
}
