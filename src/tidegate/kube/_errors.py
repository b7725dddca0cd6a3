"""Errors raised by the Kubernetes client layer.

Every answer the API server gives with a non-2xx status becomes an `ApiError` (or one of its
subclasses, picked by HTTP status), carrying the code, the `Status` reason and message exactly as
the server sent them, so callers can branch on `reason` the way client-go callers use
`apierrors.IsNotFound` and friends.
"""

from __future__ import annotations

import json
from typing import Any


class KubeError(Exception):
    """Base class of every error raised by `tidegate.kube`."""


class ConfigError(KubeError):
    """No usable cluster configuration (kubeconfig or in-cluster)."""


class ConnectionFailed(KubeError):
    """The API server could not be reached, or the connection broke mid-request."""


class NoKindMatch(KubeError):
    """Discovery does not know the kind: no such group/version, or no such kind in it."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"no matches for kind '{kind}' in version '{api_version}'")
        self.api_version = api_version
        self.kind = kind


class ApiError(KubeError):
    """The API server answered with an error `Status`."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message or reason or f"HTTP {status}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, reason={self.reason!r}, "
            f"message={self.message!r})"
        )


class BadRequest(ApiError):
    """400."""


class Unauthorized(ApiError):
    """401: the credential was not accepted."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or admission) denied the request."""


class NotFound(ApiError):
    """404."""


class MethodNotAllowed(ApiError):
    """405."""


class Conflict(ApiError):
    """409: AlreadyExists, or a resourceVersion/field-manager conflict."""


class Gone(ApiError):
    """410: the resourceVersion is too old (compacted); re-list to catch up."""


class Invalid(ApiError):
    """422: the object failed validation."""


class TooManyRequests(ApiError):
    """429: throttled by API priority and fairness; retry after a pause."""


class ServerError(ApiError):
    """5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def api_error(status: int, body: bytes | str | dict[str, Any] | None) -> ApiError:
    """Build the typed error for an HTTP status and the server's (ideally `Status`) body."""
    parsed: Any = body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            parsed = {"message": text.strip()[:2000]}
    if not isinstance(parsed, dict):
        parsed = {}
    code = parsed.get("code")
    if isinstance(code, int) and code >= 400:
        status = code
    reason = str(parsed.get("reason") or "")
    message = str(parsed.get("message") or "")
    details = parsed.get("details") if isinstance(parsed.get("details"), dict) else None
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, reason, message, details)
