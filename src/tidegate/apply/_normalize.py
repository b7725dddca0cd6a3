"""Fixes applied to manifests before a server-side apply, and to dry-run results before
they are compared, for known API server quirks (fluxcd/pkg ssa/normalize)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

from ._order import is_crd

Object = dict[str, Any]

# Kinds whose pod template (path from the object root) gets default container port protocols.
_POD_SPECS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): ("spec",),
    ("apps/v1", "Deployment"): ("spec", "template", "spec"),
    ("apps/v1", "StatefulSet"): ("spec", "template", "spec"),
    ("apps/v1", "DaemonSet"): ("spec", "template", "spec"),
    ("apps/v1", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch/v1", "Job"): ("spec", "template", "spec"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def normalize(obj: Mapping[str, Any]) -> Object:
    """A copy of a manifest ready to apply: no `status` (kept on CRDs), no creation
    timestamp, a Secret's `stringData` folded into `data`, and `protocol: TCP` on container
    and Service ports that leave it out (server-side apply keys those lists by port and
    protocol, so a missing protocol would look like drift)."""
    out: Object = copy.deepcopy(dict(obj))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("creationTimestamp", None)
    if not is_crd(out):
        out.pop("status", None)
    key = (str(out.get("apiVersion", "")), str(out.get("kind", "")))
    if key == ("v1", "Secret"):
        _fold_string_data(out)
    elif key == ("v1", "Service"):
        _default_protocols((out.get("spec") or {}).get("ports"))
    elif key in _POD_SPECS:
        spec = _dig(out, _POD_SPECS[key])
        if isinstance(spec, dict):
            for container in spec.get("containers") or []:
                if isinstance(container, dict):
                    _default_protocols(container.get("ports"))
    return out


def normalize_dry_run(obj: Object) -> Object:
    """Undo a dry-run quirk of Kubernetes < 1.27: a HorizontalPodAutoscaler's metrics come back
    with the first one duplicated and an empty one appended (kubernetes#118293)."""
    if obj.get("kind") != "HorizontalPodAutoscaler":
        return obj
    metrics = (obj.get("spec") or {}).get("metrics")
    if not isinstance(metrics, list):
        return obj
    unique: list[Any] = []
    for metric in metrics:
        if isinstance(metric, dict) and metric.get("type") and metric not in unique:
            unique.append(metric)
    out = copy.deepcopy(obj)
    out["spec"]["metrics"] = unique
    return out


def _fold_string_data(secret: Object) -> None:
    string_data = secret.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = secret.get("data")
    if not isinstance(data, dict):
        data = secret["data"] = {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _default_protocols(ports: Any) -> None:
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
