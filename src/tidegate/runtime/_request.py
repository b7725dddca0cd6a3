"""What a reconciler receives (`Request`) and returns (`Result`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    """The key of one object to reconcile: its namespace (None when cluster-scoped) and name."""

    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Request:
        """The request for an object dict (its `metadata.namespace` and `metadata.name`)."""
        meta = obj.get("metadata") or {}
        return cls(meta.get("namespace") or None, str(meta.get("name", "")))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass
class Result:
    """A reconcile's outcome: done (`requeue_after` None), or reconcile again after some seconds."""

    requeue_after: float | None = None
