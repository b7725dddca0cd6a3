"""What an apply or a prune did to each object (fluxcd/pkg ssa's `ChangeSet`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from ._inventory import Inventory, ObjMetadata

APPLY_COMPLETED = "server-side apply completed"


class Action(StrEnum):
    """What was done to one object."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    @property
    def changed(self) -> bool:
        """A mutation or deletion (Flux's `HasChanged`): not `unchanged` nor `skipped`."""
        return self not in (Action.UNCHANGED, Action.SKIPPED)


@dataclass(frozen=True)
class ChangeSetEntry:
    """One object and the action taken on it; `version` is the API version it was applied at."""

    metadata: ObjMetadata
    version: str
    action: Action

    @property
    def subject(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` for cluster-scoped objects."""
        return self.metadata.subject

    def __str__(self) -> str:
        return f"{self.subject} {self.action}"


@dataclass
class ChangeSet:
    """The entries of one apply or prune, in the order the objects were handled."""

    entries: list[ChangeSetEntry] = field(default_factory=list)

    def add(self, entry: ChangeSetEntry) -> None:
        self.entries.append(entry)

    def extend(self, entries: Iterable[ChangeSetEntry]) -> None:
        self.entries.extend(entries)

    def changed(self) -> ChangeSet:
        """Only the entries that changed something (what Flux puts in its Event)."""
        return ChangeSet([e for e in self.entries if e.action.changed])

    def to_map(self) -> dict[str, str]:
        """`{subject: action}`: the `output` field of Flux's "server-side apply completed" log."""
        return {entry.subject: str(entry.action) for entry in self.entries}

    def summary(self, message: str = APPLY_COMPLETED) -> str:
        """The log line in text form: `server-side apply completed {"Kind/ns/name": "created"}`."""
        return f"{message} {json.dumps(self.to_map())}"

    def inventory(self) -> Inventory:
        """The inventory of these objects (skipped ones included, as in Flux)."""
        return Inventory.from_changeset(self)

    def __str__(self) -> str:
        """One `<subject> <action>` line per entry: the body of Flux's apply and prune Events."""
        return "\n".join(str(entry) for entry in self.entries)

    def __iter__(self) -> Iterator[ChangeSetEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
