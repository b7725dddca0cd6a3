"""Structured logging: JSON lines as Go controllers write them (zap), with per-task context.

`log_context(controller=…, name=…)` adds fields to every record logged by the current task (and
tasks it starts) through a context variable, so concurrent reconciles never mix their fields.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "tidegate_log_context", default=MappingProxyType({})
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_CONTEXT_ATTR = "_tidegate_context"
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record the current task logs inside the block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> Mapping[str, Any]:
    """The context fields in effect for the current task."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Stamps each record with the context fields of the task that logged it.

    A handler filter runs in the logging caller's context, so the fields are captured there
    even if the record is formatted later (by a queue handler, say)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, _CONTEXT_ATTR):
            setattr(record, _CONTEXT_ATTR, _context.get())
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Context fields, then the record's `extra` fields (which win)."""
    fields: dict[str, Any] = dict(getattr(record, _CONTEXT_ATTR, None) or _context.get())
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRS and key != _CONTEXT_ATTR:
            fields[key] = value
    return fields


class JSONFormatter(logging.Formatter):
    """One JSON object per line: level, ts (RFC 3339, UTC), logger, msg, then the fields.

    An exception becomes an `error` field holding its message; the traceback is added as
    `stacktrace` only when `stacktraces` is on (debug level)."""

    def __init__(self, *, stacktraces: bool = False) -> None:
        super().__init__()
        self.stacktraces = stacktraces

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": _level_name(record.levelno),
            "ts": _timestamp(record.created),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry.setdefault("error", str(exc) or type(exc).__name__)
            if self.stacktraces:
                entry["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts level logger msg key=value …` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _timestamp(record.created),
            _level_name(record.levelno).upper(),
            record.name,
            record.getMessage(),
        ]
        parts += [f"{key}={value}" for key, value in record_fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (so a second call replaces it)."""


def configure_logging(
    level: str | int = "info", json: bool = True, stream: TextIO | None = None
) -> None:
    """Send all logging to `stream` (stderr by default) as JSON lines, or as text."""
    numeric = _LEVELS[level.lower()] if isinstance(level, str) else level
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JSONFormatter(stacktraces=numeric <= logging.DEBUG) if json else TextFormatter()
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
