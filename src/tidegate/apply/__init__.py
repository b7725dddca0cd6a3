"""Staged server-side apply, drift detection, inventory and pruning, as Flux's
kustomize-controller does them with fluxcd/pkg/ssa.

`ResourceManager.apply_all_staged` applies manifests in three stages (cluster definitions,
`*Class` kinds, the rest), dry-running every object first so that only new or drifted objects
are applied, honouring the `kustomize.toolkit.fluxcd.io/ssa|reconcile|force` annotations and
taking over fields that kubectl owns. It returns a `ChangeSet`, from which an `Inventory` in
Flux's `status.inventory` format is made; `Inventory.diff` gives the objects that left it and
`ResourceManager.delete_all` prunes those that still carry the owner labels.

`compute_status` and `wait_for` assess health with kstatus's rules as Flux applies them
(`spec.wait`, `spec.healthChecks`); `CustomHealthChecks` adds `spec.healthCheckExprs` (CEL).
"""

from ._annotations import (
    DISABLED,
    ENABLED,
    FORCE,
    IF_NOT_PRESENT,
    IGNORE,
    MERGE,
    OVERRIDE,
    PRUNE,
    RECONCILE,
    SSA,
    owner_labels_for,
)
from ._cel import CustomHealthChecks, HealthCheckExprError
from ._changeset import APPLY_COMPLETED, Action, ChangeSet, ChangeSetEntry
from ._drift import has_drifted
from ._errors import (
    ApplyError,
    ApplyFailed,
    InventoryError,
    ObjectFailure,
    ObjectsFailed,
    PruneFailed,
    WaitFailed,
    is_immutable_error,
)
from ._health import (
    HealthStatus,
    ObjectRef,
    Status,
    StatusReader,
    WaitResult,
    compute_status,
    wait_for,
)
from ._inventory import Inventory, InventoryEntry, ObjMetadata
from ._normalize import normalize
from ._order import is_class_definition, is_cluster_definition, sort_key
from ._resource_manager import ResourceManager
from ._takeover import FieldManager, takeover_managers

__all__ = [
    "APPLY_COMPLETED",
    "DISABLED",
    "ENABLED",
    "FORCE",
    "IF_NOT_PRESENT",
    "IGNORE",
    "MERGE",
    "OVERRIDE",
    "PRUNE",
    "RECONCILE",
    "SSA",
    "Action",
    "ApplyError",
    "ApplyFailed",
    "ChangeSet",
    "ChangeSetEntry",
    "CustomHealthChecks",
    "FieldManager",
    "HealthCheckExprError",
    "HealthStatus",
    "Inventory",
    "InventoryEntry",
    "InventoryError",
    "ObjMetadata",
    "ObjectFailure",
    "ObjectRef",
    "ObjectsFailed",
    "PruneFailed",
    "ResourceManager",
    "Status",
    "StatusReader",
    "WaitFailed",
    "WaitResult",
    "compute_status",
    "has_drifted",
    "is_class_definition",
    "is_cluster_definition",
    "is_immutable_error",
    "normalize",
    "owner_labels_for",
    "sort_key",
    "takeover_managers",
    "wait_for",
]
