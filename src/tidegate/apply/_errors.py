"""Errors raised by `tidegate.apply`, worded as Flux's kustomize-controller words them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tidegate.kube import ApiError, Conflict, Invalid, KubeError, NotFound

if TYPE_CHECKING:
    from ._changeset import ChangeSet


@dataclass(frozen=True)
class ObjectFailure:
    """What went wrong with one object: its subject (`Kind/namespace/name`) and the message,
    which starts with the subject as Flux's messages do."""

    subject: str
    message: str

    def __str__(self) -> str:
        return self.message


class ApplyError(Exception):
    """Base class of every error raised by `tidegate.apply`."""


class InventoryError(ApplyError, ValueError):
    """An inventory entry that is not `<namespace>_<name>_<group>_<kind>`."""


class ObjectsFailed(ApplyError):
    """One or more objects failed; `failures` lists every one of them, and `changeset` holds
    what was done before the failure (so a partial apply can still be reported)."""

    def __init__(self, failures: Sequence[ObjectFailure], changeset: ChangeSet) -> None:
        self.failures = list(failures)
        self.changeset = changeset
        super().__init__(self._message())

    def _message(self) -> str:
        return "\n".join(failure.message for failure in self.failures)


class ApplyFailed(ObjectsFailed):
    """Dry-run, take-over or apply failed for the objects in `failures`; in a failed dry-run
    nothing of that stage was applied."""


class PruneFailed(ObjectsFailed):
    """Deleting some of the objects failed."""

    def _message(self) -> str:
        # Flux: "delete failed, errors: <err>;<err>;"
        return "delete failed, errors: " + "".join(f"{f.message};" for f in self.failures)


class WaitFailed(ObjectsFailed):
    """Objects did not reach the awaited state (ready, or gone): the time ran out, or only
    failed objects were left. Worded as Flux's `WaitForSet`:
    `timeout waiting for: [Kind/name status: 'InProgress', …]`."""

    def __init__(
        self,
        failures: Sequence[ObjectFailure],
        changeset: ChangeSet,
        *,
        message: str | None = None,
    ) -> None:
        self._text = message
        super().__init__(failures, changeset)

    def _message(self) -> str:
        if self._text:
            return self._text
        return "timeout waiting for: [" + ", ".join(f.message for f in self.failures) + "]"


# Flux (fluxcd/pkg ssa/errors) treats every Conflict or Invalid answer as a possible
# immutable-field error, as kubectl does, and matches the wording of CEL rules and webhooks.
_IMMUTABLE = re.compile(r"is\simmutable|immutable\sfield")


def is_immutable_error(error: BaseException) -> bool:
    """Whether a failed dry-run may be an immutable-field change (Flux's test)."""
    if isinstance(error, Conflict | Invalid):
        return True
    return bool(_IMMUTABLE.search(str(error)))


def dry_run_failure(subject: str, namespace: str, error: KubeError) -> ObjectFailure:
    """A failed server-side dry-run, in Flux's words: `<subject> dry-run failed (<Reason>): …`,
    or `<subject> not found: …` when the namespace does not exist."""
    if isinstance(error, NotFound):
        what = "not found" if namespace else "namespace not specified"
        return ObjectFailure(subject, f"{subject} {what}: {error}")
    reason = f" ({error.reason})" if isinstance(error, ApiError) and error.reason else ""
    return ObjectFailure(subject, f"{subject} dry-run failed{reason}: {error}")
