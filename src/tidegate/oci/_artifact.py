"""The Flux artifact format: push, pull, tag, list and diff artifacts.

An artifact is an OCI image manifest with the config media type
`application/vnd.cncf.flux.config.v1+json`, one tar+gzip layer of media type
`application/vnd.cncf.flux.content.v1.tar+gzip`, and the annotations
`org.opencontainers.image.created|source|revision` — what `flux push artifact` produces.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import queue
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ._client import OCI_MANIFEST, Manifest, Progress, Registry, Sink, sha256_digest
from ._errors import ArtifactError, OCIError
from ._reference import Reference
from ._tarball import (
    DEFAULT_MAX_SIZE,
    build,
    build_directory,
    check_archive,
    extract,
    file_entries,
    move_into_place,
    staging_dir,
    walk,
    walk_file,
)

FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
CREATED = "org.opencontainers.image.created"
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
REPRODUCIBLE_CREATED = "1970-01-01T00:00:00Z"
# Layers up to this size are downloaded into memory before extraction.
_IN_MEMORY = 64 << 20
# Tags that hold signatures, attestations and SBOMs of other artifacts, not artifacts.
_HIDDEN_TAG = re.compile(r"\.(sig|att|sbom)$")
# Flux's config blob is an empty JSON object.
_CONFIG = b"{}"


@dataclass(frozen=True)
class PushResult:
    repository: str
    tag: str | None
    digest: str

    @property
    def url(self) -> str:
        suffix = f":{self.tag}" if self.tag else ""
        return f"oci://{self.repository}{suffix}@{self.digest}"

    def as_dict(self) -> dict[str, str]:
        return {
            "repository": self.repository,
            "tag": self.tag or "",
            "digest": self.digest,
            "url": self.url,
        }


@dataclass(frozen=True)
class ArtifactInfo:
    """What `list artifacts` shows of a tag."""

    tag: str
    digest: str
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.annotations.get(SOURCE, "")

    @property
    def revision(self) -> str:
        return self.annotations.get(REVISION, "")

    @property
    def created(self) -> str:
        return self.annotations.get(CREATED, "")

    def as_dict(self) -> dict[str, str]:
        return {"tag": self.tag, "digest": self.digest, "source": self.source,
                "revision": self.revision, "created": self.created}  # fmt: skip


@dataclass(frozen=True)
class PullResult:
    digest: str
    annotations: dict[str, str]
    files: list[str]


@dataclass(frozen=True)
class Difference:
    """How an artifact's files differ from a local folder's."""

    only_in_artifact: list[str]
    only_local: list[str]
    changed: list[str]

    @property
    def same(self) -> bool:
        return not (self.only_in_artifact or self.only_local or self.changed)


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def build_layer(
    path: Path,
    out: BinaryIO,
    *,
    ignore_paths: Sequence[str] | None = None,
    resolve_symlinks: bool = False,
) -> tuple[str, int]:
    """Write the artifact layer for `path` into `out`; return its digest and size.

    A folder is archived reproducibly. A tar+gzip file (say, from `build artifact`) becomes
    the layer as it is, once checked to be a readable archive; any other single file is
    archived alone, as flux does.
    """
    writer = _HashingWriter(out)
    if path.is_dir():
        build_directory(path, writer, ignore_paths, resolve_symlinks=resolve_symlinks)
    elif path.is_file():
        with open(path, "rb") as source:
            if source.read(2) != b"\x1f\x8b":
                build(walk_file(path), writer)
                return "sha256:" + writer.hasher.hexdigest(), writer.size
            source.seek(0)
            try:
                check_archive(source)
            except OCIError as exc:
                raise ArtifactError(f"'{path}': {exc}") from exc
            source.seek(0)
            shutil.copyfileobj(source, writer, 1 << 20)
    else:
        raise ArtifactError(f"no such file or folder: '{path}'")
    return "sha256:" + writer.hasher.hexdigest(), writer.size


def artifact_manifest(
    config_digest: str,
    layer_digest: str,
    layer_size: int,
    annotations: Mapping[str, str],
) -> bytes:
    """The manifest bytes, serialised once so that the digest is that of what is stored."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, "digest": config_digest, "size": len(_CONFIG)},
        "layers": [{"mediaType": FLUX_CONTENT, "digest": layer_digest, "size": layer_size}],
        "annotations": dict(sorted(annotations.items())),
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


async def push(
    registry: Registry,
    ref: Reference,
    path: Path,
    *,
    source: str = "",
    revision: str = "",
    annotations: Mapping[str, str] | None = None,
    ignore_paths: Sequence[str] | None = None,
    reproducible: bool = False,
    resolve_symlinks: bool = False,
    progress: Progress | None = None,
) -> PushResult:
    """Build the layer for `path` and push config, layer and manifest to `ref`."""
    if ref.digest:
        raise ArtifactError(f"push to '{ref}': give a tag, not a digest")
    created = (
        REPRODUCIBLE_CREATED
        if reproducible
        else datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    meta = {CREATED: created}
    if source:
        meta[SOURCE] = source
    if revision:
        meta[REVISION] = revision
    meta.update(annotations or {})
    with tempfile.TemporaryDirectory(prefix="tidegate-push-") as scratch:
        layer = Path(scratch) / "layer.tar.gz"

        def build() -> tuple[str, int]:
            with open(layer, "wb") as out:
                return build_layer(
                    path, out, ignore_paths=ignore_paths, resolve_symlinks=resolve_symlinks
                )

        layer_digest, layer_size = await asyncio.to_thread(build)
        config_digest = sha256_digest(_CONFIG)
        await registry.push_blob(ref.repository, config_digest, len(_CONFIG), _CONFIG)
        await registry.push_blob(ref.repository, layer_digest, layer_size, layer, progress=progress)
    data = artifact_manifest(config_digest, layer_digest, layer_size, meta)
    digest = await registry.push_manifest(ref.with_tag(ref.tag or "latest"), data, OCI_MANIFEST)
    return PushResult(ref.name, ref.tag or "latest", digest)


async def fetch_manifest(registry: Registry, ref: Reference) -> tuple[Manifest, dict[str, Any]]:
    """The artifact's manifest (bytes and parsed); refuses indexes and non-JSON answers."""
    manifest = await registry.fetch_manifest(ref)
    try:
        parsed = json.loads(manifest.data)
    except ValueError as exc:
        raise ArtifactError(f"manifest of '{ref}' is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict) or "layers" not in parsed:
        kind = parsed.get("mediaType", manifest.media_type) if isinstance(parsed, dict) else "?"
        raise ArtifactError(f"'{ref}' is not an artifact manifest (media type {kind})")
    return manifest, parsed


def select_layer(
    parsed: Mapping[str, Any], ref: Reference, media_type: str | None
) -> dict[str, Any]:
    """The layer to extract: the first of `media_type` (default: Flux's content type)."""
    wanted = media_type or FLUX_CONTENT
    layers = [layer for layer in parsed.get("layers") or [] if isinstance(layer, dict)]
    for layer in layers:
        if layer.get("mediaType") == wanted:
            digest, size = layer.get("digest"), layer.get("size")
            if not isinstance(digest, str) or not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
                raise ArtifactError(f"'{ref}': layer has an invalid digest {digest!r}")
            if not isinstance(size, int) or size < 0:
                raise ArtifactError(f"'{ref}': layer {digest} has an invalid size {size!r}")
            return layer
    found = ", ".join(str(layer.get("mediaType")) for layer in layers) or "none"
    raise ArtifactError(f"'{ref}' has no layer of media type '{wanted}'; its layers: {found}")


async def pull(
    registry: Registry,
    ref: Reference,
    output: Path,
    *,
    layer_media_type: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    progress: Progress | None = None,
) -> PullResult:
    """Download, verify and extract the artifact's layer into `output`.

    Extraction happens in a temporary folder beside `output` and is moved into place only
    when complete, so a failed pull leaves `output` as it was.
    """
    if await asyncio.to_thread(lambda: output.exists() and not output.is_dir()):
        raise ArtifactError(f"cannot pull '{ref}' into '{output}': it is not a folder")
    manifest, parsed = await fetch_manifest(registry, ref)
    layer = select_layer(parsed, ref, layer_media_type)
    staged = staging_dir(output)
    try:
        files = await _download_and_extract(registry, ref, layer, staged, max_size, progress)
        await asyncio.to_thread(move_into_place, staged, output)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    annotations = {str(k): str(v) for k, v in (parsed.get("annotations") or {}).items()}
    return PullResult(manifest.digest, annotations, files)


async def extract_layer(
    registry: Registry,
    ref: Reference,
    layer: Mapping[str, Any],
    destination: Path,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
) -> list[str]:
    """Download one layer (a tar+gzip) and extract it into the empty folder `destination`;
    returns the file names. The caller moves the folder into use only after this returns:
    the digest is checked when the download ends."""
    return await _download_and_extract(registry, ref, layer, destination, max_size, None)


async def download_layer(
    registry: Registry, ref: Reference, layer: Mapping[str, Any], out: Sink
) -> int:
    """Download one layer as it is into `out`, its digest and size checked; returns its size."""
    size, digest = int(layer["size"]), str(layer["digest"])
    try:
        return await registry.fetch_blob(ref.repository, digest, out, max_size=size)
    except OCIError as exc:
        raise type(exc)(f"'{ref}': {exc}") from exc


async def _download_and_extract(
    registry: Registry,
    ref: Reference,
    layer: Mapping[str, Any],
    destination: Path,
    max_size: int,
    progress: Progress | None,
) -> list[str]:
    """Download the layer into `destination`, extracting it as it arrives.

    Nothing here is trusted before the whole layer matched its digest: the caller extracts
    into a staging folder and moves it into place only when this returns. Layers too large
    to buffer in memory go to a temporary file first.
    """
    size, digest = int(layer["size"]), str(layer["digest"])
    try:
        if size > _IN_MEMORY:
            with tempfile.TemporaryFile() as blob:
                await registry.fetch_blob(
                    ref.repository, digest, blob, max_size=size, progress=progress
                )
                blob.seek(0)
                return await asyncio.to_thread(extract, blob, destination, max_size=max_size)
        pipe = _Pipe()
        extraction = asyncio.ensure_future(
            asyncio.to_thread(extract, pipe, destination, max_size=max_size)
        )
        try:
            await registry.fetch_blob(
                ref.repository, digest, pipe, max_size=size, progress=progress
            )
        except BaseException:
            pipe.close(failed=True)
            await asyncio.wait([extraction])
            if not extraction.cancelled():
                extraction.exception()  # seen: the download's own error is the one raised
            raise
        pipe.close()
        return await extraction
    except OCIError as exc:
        raise type(exc)(f"'{ref}': {exc}") from exc


class _Pipe:
    """Bytes handed from the download (the event loop) to the extraction (a thread).

    Writing never blocks the event loop; the layer is at most `_IN_MEMORY` bytes, so what
    waits here is bounded by that.
    """

    def __init__(self) -> None:
        self.chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.failed = False

    def write(self, data: bytes) -> int:
        self.chunks.put(data)
        return len(data)

    def close(self, *, failed: bool = False) -> None:
        self.failed = failed
        self.chunks.put(None)

    def read(self, size: int = -1) -> bytes:
        chunk = self.chunks.get()
        if chunk is None:
            if self.failed:
                raise ArtifactError("download failed")  # the download's own error is raised
            self.chunks.put(None)  # stays at the end for further reads
            return b""
        return chunk


async def tag(registry: Registry, ref: Reference, tags: Sequence[str]) -> str:
    """Point more tags at the manifest `ref` names (pushing its exact bytes again)."""
    manifest = await registry.fetch_manifest(ref)
    for new in tags:
        await registry.push_manifest(ref.with_tag(new), manifest.data, manifest.media_type)
    return manifest.digest


async def list_artifacts(
    registry: Registry,
    repository: str,
    *,
    regex: str | None = None,
    semver: str | None = None,
) -> list[ArtifactInfo]:
    """Every artifact tag of a repository with its digest and annotations, newest version
    first when filtered by semver, else by tag name."""
    from tidegate.semver import Constraint, parse_version

    pattern = re.compile(regex) if regex else None
    constraint = Constraint.parse(semver) if semver else None
    tags = [t for t in await registry.tags(repository) if not _HIDDEN_TAG.search(t)]
    if pattern:
        tags = [t for t in tags if pattern.search(t)]
    if constraint:
        versioned = [(v, t) for t in tags if (v := parse_version(t)) and constraint.allows(v)]
        tags = [t for _, t in sorted(versioned, reverse=True)]
    else:
        tags.sort()
    base = Reference(registry.host, repository)

    async def describe(name: str) -> ArtifactInfo:
        manifest, parsed = await fetch_manifest(registry, base.with_tag(name))
        annotations = {str(k): str(v) for k, v in (parsed.get("annotations") or {}).items()}
        return ArtifactInfo(name, manifest.digest, annotations)

    results: list[ArtifactInfo] = []
    for start in range(0, len(tags), 8):  # a few manifests at a time
        results += await asyncio.gather(*(describe(t) for t in tags[start : start + 8]))
    return results


async def diff(
    registry: Registry,
    ref: Reference,
    path: Path,
    *,
    ignore_paths: Sequence[str] | None = None,
    layer_media_type: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Difference:
    """Compare the artifact's files with what pushing `path` would archive, by content."""
    _, parsed = await fetch_manifest(registry, ref)
    layer = select_layer(parsed, ref, layer_media_type)
    with tempfile.TemporaryDirectory(prefix="tidegate-diff-") as scratch:
        extracted = Path(scratch) / "artifact"
        extracted.mkdir()
        await _download_and_extract(registry, ref, layer, extracted, max_size, None)
        remote = await asyncio.to_thread(_hash_tree, extracted)
    local = await asyncio.to_thread(_hash_local, path, ignore_paths)
    return Difference(
        only_in_artifact=sorted(set(remote) - set(local)),
        only_local=sorted(set(local) - set(remote)),
        changed=sorted(name for name in set(local) & set(remote) if local[name] != remote[name]),
    )


def _hash_tree(root: Path) -> dict[str, str]:
    return {name: _file_digest(path) for name, path in file_entries(root)}


def _hash_local(path: Path, ignore_paths: Sequence[str] | None) -> dict[str, str]:
    if path.is_dir():
        return {e.name: _file_digest(e.source) for e in walk(path, ignore_paths) if not e.is_dir}
    if path.is_file():
        # A tarball on disk: compare with its content.
        with tempfile.TemporaryDirectory(prefix="tidegate-diff-") as scratch, open(path, "rb") as f:
            try:
                extract(f, Path(scratch))
            except OCIError as exc:
                raise ArtifactError(f"'{path}': {exc}") from exc
            return _hash_tree(Path(scratch))
    raise ArtifactError(f"no such file or folder: '{path}'")


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()
