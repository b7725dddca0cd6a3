"""Object identities and the inventory of applied objects, in Flux's `status.inventory` format.

An inventory entry is `{id: <namespace>_<name>_<group>_<kind>, v: <version>}` (cli-utils'
`ObjMetadata` string): the namespace is empty for cluster-scoped objects, the group is empty
for the core group, and `:` in the names of RBAC objects is written `__`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import InventoryError
from ._order import sort_key

if TYPE_CHECKING:
    from ._changeset import ChangeSet

_SEPARATOR = "_"
_COLON = "__"
_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
_RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ObjMetadata:
    """What identifies an object across API versions: namespace, name, group and kind."""

    namespace: str
    name: str
    group: str
    kind: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ObjMetadata:
        meta = obj.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            group=group_of(str(obj.get("apiVersion") or "")),
            kind=str(obj.get("kind") or ""),
        )

    @classmethod
    def parse(cls, value: str) -> ObjMetadata:
        """Read an inventory id, as cli-utils' `ParseObjMetadata` does."""
        namespace, sep, rest = value.partition(_SEPARATOR)
        rest, sep2, kind = rest.rpartition(_SEPARATOR)
        name, sep3, group = rest.rpartition(_SEPARATOR)
        if not (sep and sep2 and sep3):
            raise InventoryError(f"unable to parse stored object metadata: {value}")
        name = name.replace(_COLON, ":")
        if _SEPARATOR in name:
            raise InventoryError(f"too many fields within: {value}")
        if not name or not kind:
            raise InventoryError(f"empty name or kind in stored object metadata: {value}")
        return cls(namespace, name, group, kind)

    @property
    def id(self) -> str:
        """The inventory id: `<namespace>_<name>_<group>_<kind>`."""
        name = self.name
        if self.group == _RBAC_GROUP and self.kind in _RBAC_KINDS:
            name = name.replace(":", _COLON)
        return _SEPARATOR.join((self.namespace, name, self.group, self.kind))

    @property
    def subject(self) -> str:
        """`Kind/namespace/name` (`Kind/name` when cluster-scoped), as Flux names objects."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class InventoryEntry:
    """One entry of `status.inventory.entries`: the object's id and its API version."""

    id: str
    v: str

    @classmethod
    def of(cls, metadata: ObjMetadata, version: str) -> InventoryEntry:
        return cls(metadata.id, version)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> InventoryEntry:
        return cls(str(entry.get("id") or ""), str(entry.get("v") or ""))

    @property
    def metadata(self) -> ObjMetadata:
        return ObjMetadata.parse(self.id)

    @property
    def api_version(self) -> str:
        """`<group>/<v>`, or `<v>` for the core group."""
        group = self.metadata.group
        return f"{group}/{self.v}" if group else self.v

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "v": self.v}


@dataclass
class Inventory:
    """The objects a Kustomization applied, in apply order (Flux's `ResourceInventory`)."""

    entries: list[InventoryEntry] = field(default_factory=list)

    @classmethod
    def from_status(cls, inventory: Mapping[str, Any] | None) -> Inventory:
        """Read `status.inventory` (`{"entries": [{"id": …, "v": …}, …]}`); None gives an empty
        inventory. Every id is checked."""
        entries = [InventoryEntry.from_dict(e) for e in (inventory or {}).get("entries") or []]
        for entry in entries:
            entry.metadata  # noqa: B018 - validates the id
        return cls(entries)

    @classmethod
    def from_changeset(cls, changeset: ChangeSet) -> Inventory:
        """Every object of a change set, skipped ones included, as Flux's `AddChangeSet`."""
        return cls([InventoryEntry.of(e.metadata, e.version) for e in changeset.entries])

    def to_status(self) -> dict[str, list[dict[str, str]]]:
        """The value of `status.inventory`."""
        return {"entries": [entry.to_dict() for entry in self.entries]}

    def metadata(self) -> list[ObjMetadata]:
        return [entry.metadata for entry in self.entries]

    def diff(self, target: Inventory) -> list[InventoryEntry]:
        """The entries of this inventory whose objects are not in `target` (the objects that
        left it: prune candidates), in apply order, with the version recorded here."""
        kept = set(target.metadata())
        stale = [entry for entry in self.entries if entry.metadata not in kept]
        return sorted(stale, key=lambda entry: sort_key(entry.metadata))

    def merge(self, entries: Iterable[InventoryEntry]) -> None:
        """Add entries whose objects are not yet in the inventory (e.g. objects a failed prune
        left behind, so the next reconcile retries them)."""
        known = set(self.metadata())
        for entry in entries:
            if entry.metadata not in known:
                self.entries.append(entry)
                known.add(entry.metadata)

    def __iter__(self) -> Iterator[InventoryEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def group_of(api_version: str) -> str:
    """`apps/v1` → `apps`; `v1` → `` (the core group)."""
    return api_version.rpartition("/")[0]


def version_of(api_version: str) -> str:
    """`apps/v1` → `v1`; `v1` → `v1`."""
    return api_version.rpartition("/")[2]
