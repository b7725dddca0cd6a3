"""A thin async layer over kubernetes_asyncio for objects of any kind, as plain dicts.

`Client` loads a kubeconfig (exec plugins included) or the in-cluster config, maps kinds to
resources through discovery (refreshed when a kind is unknown, so new CRDs work at once), and
offers get, list, watch, create, server-side apply, patch, status patch and delete, each with
optional impersonation and behind a client-side QPS/burst limiter. `Watcher` adds list-then-
watch with bookmarks and re-list on 410 Gone.
"""

from ._client import Client, Impersonation, Object, WatchEvent, object_key
from ._config import ClusterConfig, load_config
from ._discovery import APIResource, RESTMapper
from ._errors import (
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    MethodNotAllowed,
    NoKindMatch,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from ._ratelimit import TokenBucket
from ._watch import Watcher

__all__ = [
    "APIResource",
    "ApiError",
    "BadRequest",
    "Client",
    "ClusterConfig",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Gone",
    "Impersonation",
    "Invalid",
    "KubeError",
    "MethodNotAllowed",
    "NoKindMatch",
    "NotFound",
    "Object",
    "RESTMapper",
    "ServerError",
    "TokenBucket",
    "TooManyRequests",
    "Unauthorized",
    "WatchEvent",
    "Watcher",
    "load_config",
    "object_key",
]
