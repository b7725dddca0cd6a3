"""Status conditions with Flux's rules: kstatus `Reconciling`/`Stalled`, negative-polarity
failure conditions, and a `Ready` condition summarised from the others."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# Reasons shared by every kind (fluxcd/pkg/apis/meta).
SUCCEEDED = "Succeeded"
FAILED = "Failed"
PROGRESSING = "Progressing"
PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
INVALID = "InvalidObject"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Conditions:
    """The `status.conditions` of one object, changed in place.

    `lastTransitionTime` moves only when a condition's status changes, and every condition set
    records the object's generation, as `metav1.Condition` and Flux's helpers do.
    """

    def __init__(self, items: Iterable[Mapping[str, Any]] | None, generation: int) -> None:
        self.generation = generation
        self.items: dict[str, dict[str, Any]] = {}
        for item in items or ():
            if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                self.items[item["type"]] = copy.deepcopy(dict(item))

    def get(self, kind: str) -> dict[str, Any] | None:
        return self.items.get(kind)

    def status(self, kind: str) -> str | None:
        found = self.items.get(kind)
        return None if found is None else str(found.get("status"))

    def is_true(self, kind: str) -> bool:
        return self.status(kind) == TRUE

    def is_false(self, kind: str) -> bool:
        return self.status(kind) == FALSE

    def set(self, kind: str, status: str, reason: str, message: str) -> None:
        previous = self.items.get(kind)
        changed = previous is None or previous.get("status") != status
        self.items[kind] = {
            "type": kind,
            "status": status,
            "observedGeneration": self.generation,
            "lastTransitionTime": now() if changed else previous["lastTransitionTime"],  # type: ignore[index]
            "reason": reason,
            "message": _limit(message),
        }

    def true(self, kind: str, reason: str, message: str) -> None:
        self.set(kind, TRUE, reason, message)

    def false(self, kind: str, reason: str, message: str) -> None:
        self.set(kind, FALSE, reason, message)

    def delete(self, kind: str) -> None:
        self.items.pop(kind, None)

    def progressing(self, message: str) -> None:
        """Mark the object as being reconciled: Reconciling=True, Ready=Unknown."""
        self.true(RECONCILING, PROGRESSING, message)
        self.set(READY, UNKNOWN, PROGRESSING, message)

    def summarize(
        self, order: Sequence[str], negative: Sequence[str], bipolar: Sequence[str] = ()
    ) -> None:
        """Set Ready from the conditions in `order`, as Flux's summarize helper does.

        A failure wins: a negative-polarity condition that is True (or a bipolar one that is
        False) makes Ready False with its reason and message. Then a positive condition that
        is not True makes Ready match it; then the first True positive one makes Ready True.
        """
        present = [(kind, self.items[kind]) for kind in order if kind in self.items]
        for kind, item in present:
            failed = item["status"] == TRUE if kind in negative else False
            if failed or (kind in bipolar and item["status"] == FALSE):
                self.set(READY, FALSE, item["reason"], item["message"])
                return
        for wanted in (FALSE, UNKNOWN, TRUE):
            for kind, item in present:
                if kind not in negative and item["status"] == wanted:
                    self.set(READY, wanted, item["reason"], item["message"])
                    return

    def to_list(self) -> list[dict[str, Any]]:
        """Ready first, then by type, as Flux orders them for `kubectl` readers."""
        return sorted(self.items.values(), key=lambda c: (c["type"] != READY, c["type"]))


def _limit(message: str, size: int = 32_768) -> str:
    # The CRD caps condition messages at 32768 characters.
    return message if len(message) <= size else message[: size - 3] + "..."
