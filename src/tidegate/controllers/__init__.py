"""The reconcilers of Flux's kinds, and the process that runs them.

Each kind has one module (`ocirepository`, `kustomization`); `_reconciler` holds the lifecycle
they share (finalizer, suspension, progressing status, typed step errors turned into
conditions, events and the requeue decision); `_service` runs the controllers with their servers.
"""

from ._conditions import Conditions
from ._reconciler import FINALIZER, REQUESTED_AT, Reconciler, StepError
from ._service import CONTROLLERS, Options, run
from .kustomization import KustomizationReconciler
from .ocirepository import OCIRepositoryReconciler

__all__ = [
    "CONTROLLERS",
    "FINALIZER",
    "REQUESTED_AT",
    "Conditions",
    "KustomizationReconciler",
    "OCIRepositoryReconciler",
    "Options",
    "Reconciler",
    "StepError",
    "run",
]
