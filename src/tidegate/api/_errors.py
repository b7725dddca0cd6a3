"""Errors of `tidegate.api`."""

from __future__ import annotations


class InvalidObject(ValueError):
    """An object that does not fit its kind's schema: a wrong type, a value outside an enum or
    pattern, a missing required field. `field` is the path (`spec.layerSelector.operation`);
    a controller reports the message in a Stalled condition."""

    def __init__(self, field: str, detail: str, *, kind: str = "", name: str = "") -> None:
        self.field = field
        self.detail = detail
        self.kind = kind
        self.name = name
        where = f"invalid {kind} '{name}': " if kind else ""
        super().__init__(f"{where}{field}: {detail}" if field else f"{where}{detail}")


class InstallError(RuntimeError):
    """CustomResourceDefinitions could not be applied, or did not become established."""
