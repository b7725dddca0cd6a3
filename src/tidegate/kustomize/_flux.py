"""Flux's generation step: the kustomization kustomize-controller builds a directory with
when the directory has none (fluxcd/pkg kustomize, `findOrGenerateKustomization` and
`scanManifests` in kustomize_generator.go), and the fields of a Flux Kustomization's spec it
writes into that kustomization before the build (`GenerateManifest`)."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._build import Build, build_resources
from ._errors import KustomizeError
from ._kustomization import KUSTOMIZATION_FILE_NAMES, KUSTOMIZATION_KIND, KUSTOMIZATION_VERSION
from ._loader import DEFAULT_MAX_FILE_SIZE, FileLoader, _eval_symlinks, _has_prefix
from ._resource import resources_from_documents
from ._yaml import parse_documents, parse_kustomization_yaml

__all__ = [
    "apply_common_metadata",
    "apply_kustomization_spec",
    "build_for_spec",
    "generate_kustomization",
    "has_kustomization",
    "kustomization_for_spec",
]


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


# -- the Flux Kustomization's spec ------------------------------------------------------------


def build_for_spec(
    path: Path | str,
    spec: Mapping[str, Any],
    *,
    root: Path | str | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> Build:
    """Build `path` as kustomize-controller builds it for a Flux Kustomization whose `.spec`
    is `spec`: with the kustomization of `kustomization_for_spec`, files read from anywhere
    within `root` (the artifact), and the objects in the order kustomize accumulates them.

    That last point is Flux's, not kubectl's: fluxcd/pkg passes krusty options whose Reorder
    is unset (neither "legacy" nor "unspecified"), so kustomize sorts nothing unless the
    kustomization has `sortOptions`. FIFO order is that.
    """
    kustomization = kustomization_for_spec(path, spec, root=root, max_file_size=max_file_size)
    if "sortOptions" not in kustomization:
        kustomization = {**kustomization, "sortOptions": {"order": "fifo"}}
    return build_resources(
        path,
        root=root,
        load_restrictor="LoadRestrictionsNone",
        max_file_size=max_file_size,
        kustomization=kustomization,
    )


def kustomization_for_spec(
    path: Path | str,
    spec: Mapping[str, Any],
    *,
    root: Path | str | None = None,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> dict[str, Any]:
    """The kustomization kustomize-controller builds `path` with, for a Flux Kustomization
    whose `.spec` is `spec` (fluxcd/pkg's `GenerateManifest`): the directory's own
    kustomization file, or the one Flux generates, with the spec applied
    (`apply_kustomization_spec`). `build_for_spec` builds with it as Flux does.
    """
    loader = FileLoader(
        root if root is not None else path,
        directory=path,
        load_restrictor="LoadRestrictionsNone",
        max_file_size=max_file_size,
    )
    names = dict(loader.list_directory("."))
    for name in KUSTOMIZATION_FILE_NAMES:
        if name in names and not names[name]:
            found = parse_kustomization_yaml(loader.read_text(name))
            if found is None:
                found = {}
            if not isinstance(found, dict):
                raise KustomizeError(f"invalid Kustomization: {name} is not a mapping")
            return apply_kustomization_spec(found, spec, path=loader.directory, root=loader.root)
    generated = generate_kustomization(path, root=root, max_file_size=max_file_size)
    return apply_kustomization_spec(
        generated, spec, path=loader.directory, root=loader.root, generated=True
    )


def apply_kustomization_spec(
    kustomization: Mapping[str, Any],
    spec: Mapping[str, Any],
    *,
    path: Path | str | None = None,
    root: Path | str | None = None,
    generated: bool = False,
) -> dict[str, Any]:
    """`kustomization` with the build fields of a Flux Kustomization's `spec` (its JSON, as
    the API server stores it) written in, as fluxcd/pkg's `GenerateManifest` writes them:

    - `targetNamespace`, `namePrefix` and `nameSuffix` set `namespace`, `namePrefix` and
      `nameSuffix`, replacing the kustomization's own;
    - `patches` are appended to the kustomization's, their targets as kustomize selectors;
    - `components` are appended; each must be a local, relative path, and with
      `ignoreMissingComponents` one that does not exist below `path` (the directory built,
      read within `root`) is left out;
    - `images` are merged by name into the kustomization's: `newName` when set replaces
      the entry's, and `newTag` or `digest` when either is set replace both (they choose the
      version together); an image not listed yet is appended;
    - `buildMetadata`, when not empty, replaces the kustomization's.

    A kustomization found in the directory (`generated=False`) without resources gets
    `buildMetadata: [originAnnotations]`, as Flux gives it to avoid kustomize's "empty
    kustomization" error; so its objects carry `config.kubernetes.io/origin`.

    `commonMetadata` is not a kustomization field: Flux sets its labels and annotations on
    the objects after the build (`apply_common_metadata`). `postBuild` comes after the build
    too (`tidegate.envsubst`). The input is not changed.
    """
    out: dict[str, Any] = copy.deepcopy(dict(kustomization))
    # Flux reads the file into kustomize's Kustomization type with these preset.
    out.setdefault("apiVersion", KUSTOMIZATION_VERSION)
    out.setdefault("kind", KUSTOMIZATION_KIND)
    if not generated and not out.get("resources"):
        out["buildMetadata"] = ["originAnnotations"]
    for field, target in (
        ("targetNamespace", "namespace"),
        ("namePrefix", "namePrefix"),
        ("nameSuffix", "nameSuffix"),
    ):
        if field in spec:
            out[target] = spec[field]
    for patch in spec.get("patches") or ():
        entry: dict[str, Any] = {"patch": patch.get("patch", "")}
        target = patch.get("target")
        if target is not None:
            entry["target"] = {key: target[key] for key in _SELECTOR_FIELDS if target.get(key)}
        out.setdefault("patches", []).append(entry)
    ignore_missing = bool(spec.get("ignoreMissingComponents"))
    for component in spec.get("components") or ():
        if not is_local_relative_path(component):
            raise KustomizeError(f"component path '{component}' must be local and relative")
        if ignore_missing and not _exists(path, root, component):
            continue
        out.setdefault("components", []).append(component)
    for image in spec.get("images") or ():
        _merge_image(out, image)
    build_metadata = spec.get("buildMetadata")
    if build_metadata:
        out["buildMetadata"] = list(build_metadata)
    return out


def apply_common_metadata(
    objects: list[dict[str, Any]], common_metadata: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The objects with a Flux Kustomization's `spec.commonMetadata` set on them, as
    kustomize-controller does after the build and the post-build substitution (fluxcd/pkg
    ssa's SetCommonMetadata): its labels and annotations go into each object's own
    `metadata`, overriding any with the same key, and nowhere else (not into selectors or
    pod templates, unlike kustomize's `commonLabels`). The inputs are not changed.
    """
    labels = dict((common_metadata or {}).get("labels") or {})
    annotations = dict((common_metadata or {}).get("annotations") or {})
    if not labels and not annotations:
        return [copy.deepcopy(obj) for obj in objects]
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        for field, values in (("labels", labels), ("annotations", annotations)):
            merged = {**(metadata.get(field) or {}), **values}
            if merged:
                metadata[field] = merged
        out.append(obj)
    return out


# kustomize's types.Selector, as Flux's adaptSelector fills it from a Flux selector.
_SELECTOR_FIELDS = (
    "group",
    "version",
    "kind",
    "name",
    "namespace",
    "labelSelector",
    "annotationSelector",
)


def _merge_image(kustomization: dict[str, Any], image: Mapping[str, Any]) -> None:
    images: list[dict[str, Any]] = kustomization.setdefault("images", [])
    name = image.get("name", "")
    existing = next((entry for entry in images if entry.get("name", "") == name), None)
    if existing is None:
        entry = {"name": name}
        for key in ("newName", "newTag", "digest"):
            if image.get(key):
                entry[key] = image[key]
        images.append(entry)
        return
    if image.get("newName"):
        existing["newName"] = image["newName"]
    if image.get("newTag") or image.get("digest"):
        # The tag and the digest choose the version together: a fresh tag next to a stale
        # digest would pull the digest.
        for key in ("newTag", "digest"):
            if image.get(key):
                existing[key] = image[key]
            else:
                existing.pop(key, None)


# Remote forms kustomize recognises (its repospec.go), "file://" left out, as Flux has them.
_REMOTE_PREFIXES = (
    "git::",
    "gh:",
    "ssh://",
    "https://",
    "http://",
    "git@",
    "github.com:",
    "github.com/",
)


def is_local_relative_path(path: str) -> bool:
    """Whether `path` may name a component: not remote, not absolute (Flux's
    IsLocalRelativePath)."""
    lowered = path.lower()
    if any(len(prefix) < len(path) and lowered.startswith(prefix) for prefix in _REMOTE_PREFIXES):
        return False
    return not (os.path.isabs(path) or os.path.isabs(re.sub(r"^file://", "", lowered)))


def _exists(path: Path | str | None, root: Path | str | None, component: str) -> bool:
    """Whether `component` exists below the directory `path`, within `root` (Flux's secure
    filesystem answers no for what lies outside its root)."""
    if path is None:
        raise ValueError("ignoreMissingComponents needs the directory built (path=...)")
    directory = os.path.abspath(path)
    joined = os.path.normpath(os.path.join(directory, component))
    try:
        real = _eval_symlinks(joined)
    except KustomizeError:
        return False
    limit = os.path.realpath(root if root is not None else directory)
    return _has_prefix(real, limit)
