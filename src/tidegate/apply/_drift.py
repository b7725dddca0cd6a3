"""Drift detection: does the result of a server-side apply dry-run differ from the live object?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._normalize import normalize_dry_run


def has_drifted(live: Mapping[str, Any] | None, dry_run: Mapping[str, Any]) -> bool:
    """Whether applying would change the object, as fluxcd/pkg ssa decides it.

    A dry-run result without a resourceVersion is an object to create. Otherwise labels and
    annotations are compared, then everything but `metadata` and `status`: so managedFields,
    resourceVersion, generation and timestamps never count as drift.
    """
    if not _meta(dry_run).get("resourceVersion") or live is None:
        return True
    for key in ("labels", "annotations"):
        if (_meta(dry_run).get(key) or {}) != (_meta(live).get(key) or {}):
            return True
    return _body(normalize_dry_run(dict(dry_run))) != _body(normalize_dry_run(dict(live)))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _body(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}
