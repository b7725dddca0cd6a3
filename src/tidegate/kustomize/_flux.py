"""Flux's generation step: the kustomization kustomize-controller builds a directory with
when the directory has none (fluxcd/pkg kustomize, `findOrGenerateKustomization` and
`scanManifests` in kustomize_generator.go)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._errors import KustomizeError
from ._kustomization import KUSTOMIZATION_FILE_NAMES, KUSTOMIZATION_KIND, KUSTOMIZATION_VERSION
from ._loader import DEFAULT_MAX_FILE_SIZE, FileLoader
from ._resource import resources_from_documents
from ._yaml import parse_documents

__all__ = ["generate_kustomization", "has_kustomization"]


def has_kustomization(path: Path | str, *, root: Path | str | None = None) -> bool:
    """Whether the directory holds a kustomization file (then Flux builds it as it is)."""
    loader = FileLoader(root if root is not None else path, directory=path)
    return _has_kustomization(loader, ".")


def _has_kustomization(loader: FileLoader, directory: str) -> bool:
    names = dict(loader.list_directory(directory))
    return any(name in names and not names[name] for name in KUSTOMIZATION_FILE_NAMES)


def generate_kustomization(
    path: Path | str,
    *,
    root: Path | str | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> dict[str, Any]:
    """The kustomization Flux generates for a directory without one.

    Every `.yaml`/`.yml` file below the directory, walked in lexical order, becomes a
    resource (`./path/file.yaml`); a subdirectory holding a kustomization file becomes a
    resource itself and is not descended into. A file that does not decode as Kubernetes
    objects is an error: `failed to decode Kubernetes YAML from <file>: <cause>`. With no
    resources, the kustomization sets the placeholder namespace `_placeholder`, as Flux does,
    so that kustomize does not call it empty.
    """
    # Flux reads through a filesystem confined to the root, not to the directory.
    loader = FileLoader(
        root if root is not None else path,
        directory=path,
        load_restrictor="LoadRestrictionsNone",
        max_file_size=max_file_size,
    )
    resources: list[str] = []
    _scan(loader, ".", resources)
    kustomization: dict[str, Any] = {
        "apiVersion": KUSTOMIZATION_VERSION,
        "kind": KUSTOMIZATION_KIND,
    }
    if resources:
        kustomization["resources"] = resources
    else:
        kustomization["namespace"] = "_placeholder"
    return kustomization


def _scan(loader: FileLoader, directory: str, found: list[str]) -> None:
    for name, is_dir in loader.list_directory(directory):
        relative = name if directory == "." else f"{directory}/{name}"
        if is_dir:
            if _has_kustomization(loader, relative):
                found.append(f"./{relative}")
            else:
                _scan(loader, relative, found)
            continue
        if os.path.splitext(name)[1] not in (".yaml", ".yml"):
            continue
        absolute = os.path.join(loader.directory, relative)
        try:
            text = loader.read_text(relative)
            resources_from_documents(parse_documents(text, relative), relative)
        except KustomizeError as exc:
            raise KustomizeError(
                f"failed to decode Kubernetes YAML from {absolute}: {exc}"
            ) from None
        found.append(f"./{relative}")
