"""Top-level kinds: a model with apiVersion, kind and metadata, and the facts its CRD needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

from ._errors import InvalidObject
from ._meta import ObjectMeta
from ._model import Model, field


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """A column `kubectl get` shows for the kind (`additionalPrinterColumns`)."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {"jsonPath": self.json_path, "name": self.name, "type": self.type}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        if self.format:
            column["format"] = self.format
        return dict(sorted(column.items()))


# The columns every Flux kind ends with.
READY_COLUMN = PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status')
STATUS_COLUMN = PrinterColumn("Status", "string", '.status.conditions[?(@.type=="Ready")].message')
AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


@dataclasses.dataclass(frozen=True)
class ResourceInfo:
    """Group, version and names of a kind, and how its CRD presents it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    namespaced: bool = True
    status_subresource: bool = True
    printer_columns: tuple[PrinterColumn, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


class Resource(Model):
    """Base of top-level kinds. Subclasses set `info` and add `spec` and `status` fields."""

    info: ClassVar[ResourceInfo]

    api_version: str = field(
        default="",
        json="apiVersion",
        description=(
            "The versioned schema of this object, as `<group>/<version>`. The API server "
            "converts objects it recognises to its current version."
        ),
    )
    kind: str = field(
        default="",
        description="The object's kind, in CamelCase. Cannot be changed.",
    )
    metadata: ObjectMeta = field(default_factory=ObjectMeta)

    def __post_init__(self) -> None:
        if not self.api_version:
            object.__setattr__(self, "api_version", self.info.api_version)
        if not self.kind:
            object.__setattr__(self, "kind", self.info.kind)

    @property
    def key(self) -> str:
        """`namespace/name`, as logs, events and work queues name the object."""
        meta = self.metadata
        return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Self:
        """Parse an object as the API server (or a manifest file) gives it, with defaults applied.

        Raises `InvalidObject` naming the kind, the object and the field when it does not fit
        the kind's schema, e.g. `invalid OCIRepository 'apps/podinfo': spec.interval: …`.
        """
        info = cls.info
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        name = ""
        if isinstance(meta, Mapping):
            name = str(meta.get("name") or "")
            if meta.get("namespace"):
                name = f"{meta['namespace']}/{name}"
        kind = obj.get("kind") if isinstance(obj, Mapping) else None
        if kind and kind != info.kind:
            raise InvalidObject(
                "kind", f"expected '{info.kind}', got '{kind}'", kind=info.kind, name=name
            )
        api_version = obj.get("apiVersion") if isinstance(obj, Mapping) else None
        if api_version and api_version != info.api_version:
            raise InvalidObject(
                "apiVersion",
                f"unsupported version '{api_version}': tidegate serves '{info.api_version}'",
                kind=info.kind,
                name=name,
            )
        try:
            return cls.from_dict(obj)
        except InvalidObject as exc:
            raise InvalidObject(exc.field, exc.detail, kind=info.kind, name=name) from None

    def to_object(self) -> dict[str, Any]:
        """The object as the API server takes it (for create, apply or a manifest file)."""
        obj = self.to_dict()
        return {"apiVersion": self.api_version, "kind": self.kind, **obj}
