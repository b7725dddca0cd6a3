"""The `kustomize.toolkit.fluxcd.io/*` annotations (or labels) that steer apply and prune.

As in Flux, a key matches when the object carries it as a label or an annotation with the
given value, compared case-insensitively (`Disabled` and `disabled` are the same).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "kustomize.toolkit.fluxcd.io"
SSA = f"{GROUP}/ssa"
PRUNE = f"{GROUP}/prune"
RECONCILE = f"{GROUP}/reconcile"
FORCE = f"{GROUP}/force"

OVERRIDE = "Override"
MERGE = "Merge"
IF_NOT_PRESENT = "IfNotPresent"
IGNORE = "Ignore"
DISABLED = "disabled"
ENABLED = "enabled"

# Never applied (and never pruned): `reconcile: disabled` or `ssa: Ignore`, on the manifest
# or on the object in the cluster.
SKIP_APPLY = {RECONCILE: DISABLED, SSA: IGNORE}
# Created when absent, never updated.
CREATE_ONLY = {SSA: IF_NOT_PRESENT}
# Recreated on immutable-field changes.
RECREATE = {FORCE: ENABLED}
# Fields other managers (kubectl) own are left to them: no managed-fields take-over.
KEEP_OTHER_MANAGERS = {SSA: MERGE}
# Never deleted by a prune.
SKIP_PRUNE = {PRUNE: DISABLED, RECONCILE: DISABLED, SSA: IGNORE}


def any_in_metadata(obj: Mapping[str, Any] | None, selector: Mapping[str, str]) -> bool:
    """Whether the object carries any of the key/value pairs as a label or annotation."""
    if obj is None:
        return False
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    for key, value in selector.items():
        for found in (labels.get(key), annotations.get(key)):
            if found and str(found).casefold() == value.casefold():
                return True
    return False


def carries_labels(obj: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether every one of `labels` is on the object with exactly that value."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())


def owner_labels_for(name: str, namespace: str, group: str = GROUP) -> dict[str, str]:
    """The labels that mark objects as applied by one Kustomization:
    `<group>/name` and `<group>/namespace` (Flux's `GetOwnerLabels`)."""
    return {f"{group}/name": name, f"{group}/namespace": namespace}
