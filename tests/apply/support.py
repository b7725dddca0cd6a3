"""Helpers for the apply tests: manifests from testdata, managed-fields inspection."""

from __future__ import annotations

import secrets
from pathlib import Path
from string import Template
from typing import Any

import yaml

from tidegate.apply import ResourceManager, owner_labels_for
from tidegate.kube import Client

TESTDATA = Path(__file__).parent / "testdata"


def manifests(name: str, **values: str) -> list[dict[str, Any]]:
    """The objects of `testdata/<name>`, with `${…}` placeholders filled in."""
    text = Template((TESTDATA / name).read_text()).substitute(values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def pick(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"]))


def suffix() -> str:
    return secrets.token_hex(4)


def manager_for(kube: Client, name: str = "app", namespace: str = "flux-system") -> ResourceManager:
    """A manager as the Kustomization `namespace/name` would use it."""
    return ResourceManager(kube, owner_labels=owner_labels_for(name, namespace))


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """managedFields entries by (manager, operation)."""
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}
