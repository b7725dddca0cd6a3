"""kustomize v5 builds in process: the same objects, in the same order, printed byte for byte
as `kustomize build` prints them, reading nothing outside the build root, fetching nothing,
running nothing.

    from tidegate import kustomize

    objects = kustomize.build("overlays/prod")          # list of dicts
    text = kustomize.build_yaml("overlays/prod")        # the YAML stream

A directory without a kustomization file builds as Flux builds it: with the kustomization
Flux's kustomize-controller generates (see `generate_kustomization`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._build import Build, build_resources
from ._errors import KustomizeError
from ._flux import (
    apply_common_metadata,
    apply_kustomization_spec,
    build_for_spec,
    generate_kustomization,
    has_kustomization,
    kustomization_for_spec,
)
from ._loader import DEFAULT_MAX_FILE_SIZE, FileLoader, Loader, LoadRestrictor
from ._resource import ResId, Resource, ResourceList
from ._yaml import dump, dump_all, parse_kustomization_yaml

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "Build",
    "FileLoader",
    "KustomizeError",
    "LoadRestrictor",
    "Loader",
    "ResId",
    "Resource",
    "ResourceList",
    "apply_common_metadata",
    "apply_kustomization_spec",
    "build",
    "build_for_spec",
    "build_resources",
    "build_yaml",
    "dump",
    "dump_all",
    "generate_kustomization",
    "kustomization_for_spec",
    "parse_kustomization_yaml",
    "run",
]


def run(
    path: Path | str,
    *,
    root: Path | str | None = None,
    load_restrictor: LoadRestrictor = "LoadRestrictionsRootOnly",
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    flux: bool = True,
) -> Build:
    """Build the kustomization in `path` (reading nothing outside `root`, default `path`).

    A directory without a kustomization file gets the one Flux generates (`flux=False`:
    kustomize's error instead).
    """
    kustomization: dict[str, Any] | None = None
    if flux and not has_kustomization(path, root=root):
        kustomization = generate_kustomization(path, root=root, max_file_size=max_file_size)
    return build_resources(
        path,
        root=root,
        load_restrictor=load_restrictor,
        max_file_size=max_file_size,
        kustomization=kustomization,
    )


def build(
    path: Path | str,
    *,
    root: Path | str | None = None,
    load_restrictor: LoadRestrictor = "LoadRestrictionsRootOnly",
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    flux: bool = True,
) -> list[dict[str, Any]]:
    """The objects `kustomize build path` produces, in its order (options as `run`)."""
    result = run(
        path, root=root, load_restrictor=load_restrictor, max_file_size=max_file_size, flux=flux
    )
    return result.resources.objects()


def build_yaml(
    path: Path | str,
    *,
    root: Path | str | None = None,
    load_restrictor: LoadRestrictor = "LoadRestrictionsRootOnly",
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    flux: bool = True,
) -> str:
    """What `kustomize build path` prints (options as `run`)."""
    result = run(
        path, root=root, load_restrictor=load_restrictor, max_file_size=max_file_size, flux=flux
    )
    return dump_all(result.resources.objects())
