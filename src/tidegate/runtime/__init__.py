"""A controller runtime on asyncio, modelled on controller-runtime and client-go.

`Informer`/`InformerSet` keep watched caches of objects; a `Controller` turns their changes
into `Request`s on a `WorkQueue` and has workers call a reconcile function, retrying failures
with backoff and honouring `Result.requeue_after`. Around it: `LeaderElection` on a Lease,
an `EventRecorder` for Kubernetes Events, `Metrics` in the Prometheus text format served with
health probes by `ProbeServer`, and JSON logging with per-reconcile context fields.

Nothing here knows about any particular kind: callers bring their reconcilers, annotations
and metric names.
"""

from ._controller import RECONCILE_TIME_BUCKETS, Controller, MapFunction, Reconcile
from ._events import NORMAL, WARNING, EventRecorder
from ._informer import ADDED, DELETED, MODIFIED, RESYNC, Handler, Informer, InformerSet
from ._leader import LeaderElection, LeadershipLost
from ._logging import (
    JSONFormatter,
    TextFormatter,
    configure_logging,
    current_log_context,
    log_context,
)
from ._metrics import (
    CONTENT_TYPE,
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Metrics,
    exponential_buckets,
)
from ._predicates import Predicate, any_change, changed
from ._probes import ProbeServer
from ._queue import ShutDown, WorkQueue
from ._request import Request, Result

__all__ = [
    "ADDED",
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "DELETED",
    "MODIFIED",
    "NORMAL",
    "RECONCILE_TIME_BUCKETS",
    "RESYNC",
    "WARNING",
    "Controller",
    "Counter",
    "EventRecorder",
    "Gauge",
    "Handler",
    "Histogram",
    "Informer",
    "InformerSet",
    "JSONFormatter",
    "LeaderElection",
    "LeadershipLost",
    "MapFunction",
    "Metrics",
    "Predicate",
    "ProbeServer",
    "Reconcile",
    "Request",
    "Result",
    "ShutDown",
    "TextFormatter",
    "WorkQueue",
    "any_change",
    "changed",
    "configure_logging",
    "current_log_context",
    "exponential_buckets",
    "log_context",
]
