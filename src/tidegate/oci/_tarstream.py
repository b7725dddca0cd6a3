"""A lean, strict reader of tar+gzip streams, for extraction.

`tarfile` spends more time building `TarInfo` objects and copying through its buffers than
zlib spends inflating; this reader parses only what extraction needs (name, type, mode,
size, link name; ustar prefixes, GNU long names and PAX `path`/`linkpath`/`size` records)
and hands file contents out as views of the inflated buffer, so that they reach `os.write`
without another copy.

Anything it does not understand is an error, never a guess: bad checksums, truncation,
oversized metadata, sparse files and unknown entry types all raise `UnsafeArchive`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, cast

from zlib_ng import zlib_ng

from ._errors import UnsafeArchive

BLOCK = 512
# Compressed bytes read per call, and the most inflated bytes held at once: an archive bomb
# never gets more than this into memory.
_READ = 1 << 20
_INFLATE = 1 << 20
# Inflated chunks waiting for the writer; with the one being written and the one being
# inflated, at most this many + 2 chunks are held.
_QUEUED = 4
# Long names and PAX records larger than this are refused; real ones are a few hundred bytes.
_MAX_METADATA = 1 << 20

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "directory", "symlink", "hardlink"
_KINDS = {
    b"0": FILE,
    b"\0": FILE,
    b"7": FILE,  # contiguous file: a regular file everywhere that matters
    b"5": DIRECTORY,
    b"2": SYMLINK,
    b"1": HARDLINK,
    b"3": "device file",
    b"4": "device file",
    b"6": "FIFO",
    b"S": "sparse file",
}
_USTAR = b"ustar\x0000"
# zlib-ng's type stub declares `error` as an instance; it is the exception class.
_INFLATE_ERROR = cast("type[Exception]", zlib_ng.error)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


@dataclass(slots=True)
class Member:
    name: str
    kind: str  # FILE, DIRECTORY, SYMLINK, HARDLINK, or a word for what is refused
    mode: int
    size: int
    linkname: str


def invalid(why: str) -> UnsafeArchive:
    return UnsafeArchive(f"invalid tar+gzip archive: {why}")


class _Inflated:
    """The inflated bytes of a gzip stream of one or more members, in order."""

    def __init__(self, source: Readable) -> None:
        self.source = source
        self.inflater = zlib_ng.decompressobj(31)
        self.buffer = memoryview(b"")
        self.started = False

    def more(self) -> memoryview:
        """The next inflated bytes; empty at the clean end of the stream."""
        try:
            while True:
                tail = self.inflater.unconsumed_tail
                if tail:
                    data = self.inflater.decompress(tail, _INFLATE)
                elif self.inflater.eof:
                    rest = self.inflater.unused_data or self.source.read(_READ) or b""
                    if not rest.strip(b"\0"):
                        return memoryview(b"")  # end, or zero padding after the last member
                    self.inflater = zlib_ng.decompressobj(31)  # another gzip member follows
                    data = self.inflater.decompress(rest, _INFLATE)
                else:
                    compressed = self.source.read(_READ) or b""
                    if not compressed:
                        raise invalid("unexpected end of data" if self.started else "empty stream")
                    self.started = True
                    data = self.inflater.decompress(compressed, _INFLATE)
                if data:
                    return memoryview(data)
        except _INFLATE_ERROR as exc:
            raise invalid(str(exc)) from exc


class _Background:
    """`_Inflated` running in a thread, ahead of the reader.

    Inflating (zlib-ng: the same format, inflated about a quarter faster than by zlib)
    and `os.write` both let go of the interpreter lock, so inflating the next chunk
    while the current one is written to files uses the second core.
    """

    def __init__(self, source: Readable) -> None:
        self.inflated = _Inflated(source)
        self.queue: queue.Queue[memoryview | BaseException] = queue.Queue(_QUEUED)
        self.stopped = threading.Event()
        self.ended = False
        self.thread = threading.Thread(target=self.run, name="inflate", daemon=True)
        self.thread.start()

    def run(self) -> None:
        item: memoryview | BaseException
        while not self.stopped.is_set():
            try:
                item = self.inflated.more()
            except BaseException as exc:  # handed to the reader, which raises it
                item = exc
            while not self.stopped.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, memoryview) or not item:
                return

    def more(self) -> memoryview:
        if self.ended:
            return memoryview(b"")
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.ended = True
            raise item
        self.ended = not item
        return item

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


class TarStream:
    """Iterate over the members of a tar+gzip stream; read each file's data with `chunks`.

    Use it as a context manager: it inflates in a thread that `close` stops.
    """

    def __init__(self, source: Readable) -> None:
        self.inflated = _Background(source)
        self.buffer = memoryview(b"")
        self.left = 0  # data bytes of the current member not yet handed out
        self.padding = 0
        self.globals: dict[str, str] = {}

    def __enter__(self) -> TarStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.inflated.close()

    def __iter__(self) -> Iterator[Member]:
        while True:
            self.skip(self.left + self.padding)
            self.left = self.padding = 0
            member = self.next_member()
            if member is None:
                return
            if member.kind == FILE:
                self.left = member.size
                self.padding = -member.size % BLOCK
            else:
                self.skip(member.size + -member.size % BLOCK)
            yield member

    def chunks(self) -> Iterator[memoryview]:
        """The current file's data, as views valid until the next chunk is asked for."""
        while self.left:
            piece = self.take(self.left)
            self.left -= len(piece)
            yield piece

    # -- reading the inflated stream

    def take(self, n: int) -> memoryview:
        """Up to `n` bytes (at least one), from the buffer or freshly inflated."""
        if not self.buffer:
            self.buffer = self.inflated.more()
            if not self.buffer:
                raise invalid("unexpected end of data")
        piece, self.buffer = self.buffer[:n], self.buffer[n:]
        return piece

    def exact(self, n: int) -> bytes:
        if len(self.buffer) >= n:
            piece, self.buffer = self.buffer[:n], self.buffer[n:]
            return piece.tobytes()
        parts = bytearray()
        while len(parts) < n:
            parts += self.take(n - len(parts))
        return bytes(parts)

    def skip(self, n: int) -> None:
        while n:
            n -= len(self.take(n))

    def at_end(self) -> bool:
        """Whether the stream ends here (a tar without its end-of-archive blocks)."""
        if self.buffer:
            return False
        self.buffer = self.inflated.more()
        return not self.buffer

    # -- parsing headers

    def next_member(self) -> Member | None:
        overrides: dict[str, str] = {}
        while True:
            if self.at_end():
                return None
            header = self.exact(BLOCK)
            if header.count(0) == BLOCK:
                return None  # end-of-archive marker
            _check_sum(header)
            flag = header[156:157]
            size = _number(header[124:136])
            if flag in (b"x", b"g", b"L", b"K"):
                if size > _MAX_METADATA:
                    raise invalid(f"extended header of {size} bytes")
                data = self.exact(size)
                self.skip(-size % BLOCK)
                if flag == b"x":
                    overrides.update(_pax_records(data))
                elif flag == b"g":
                    self.globals.update(_pax_records(data))
                else:
                    overrides["path" if flag == b"L" else "linkpath"] = _text(data)
                continue
            values = {**self.globals, **overrides}
            name = values.get("path")
            if name is None:
                name = _text(header[0:100])
                prefix = _text(header[345:500]) if header[257:265] == _USTAR else ""
                if prefix:
                    name = f"{prefix}/{name}"
            kind = _KINDS.get(flag)
            if kind is None:
                raise UnsafeArchive(
                    f"archive entry '{name}' has an unsupported type {flag.decode('latin-1')!r}"
                )
            if flag == b"\0" and name.endswith("/"):
                kind = DIRECTORY  # old tar: a folder is a regular file named with a slash
            if "size" in values:
                try:
                    size = int(values["size"])
                except ValueError:
                    raise invalid(f"bad size {values['size']!r} for '{name}'") from None
            if size < 0:
                raise invalid(f"negative size for '{name}'")
            linkname = values.get("linkpath")
            if linkname is None:
                linkname = _text(header[157:257])
            return Member(name, kind, _number(header[100:108]), size, linkname)


def _check_sum(header: bytes) -> None:
    stored = _number(header[148:156])
    # The checksum is computed with its own field as eight spaces; old tars summed signed bytes.
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if stored == unsigned:
        return
    signed = unsigned - 256 * sum(1 for b in header if b > 127)
    if stored != signed:
        raise invalid("header checksum mismatch")


def _number(field: bytes) -> int:
    if field[0] == 0x80:  # base-256, for numbers too large for octal
        return int.from_bytes(field[1:], "big")
    if field[0] & 0x80:
        raise invalid("negative number in header")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise invalid(f"bad number {text!r} in header") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records; the keys other than these three do not matter here."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise invalid("malformed PAX record")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise invalid("malformed PAX record")
        if key in (b"path", b"linkpath", b"size"):
            records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records
