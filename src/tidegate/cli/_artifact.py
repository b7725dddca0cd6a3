"""`tidegate build|push|pull|tag|list|diff artifact(s)`, with `flux`'s flags."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from tidegate import oci
from tidegate.oci import Credentials, OCIError, Reference, Registry

T = TypeVar("T")


def _registry_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--creds", default="", help="Registry credentials as USER:PASSWORD "
                     "(default: from the docker config and its credential helpers)."),
        click.option("--insecure-registry", is_flag=True,
                     help="Talk plain HTTP to the registry (for local registries)."),
        click.option("--ca-file", type=click.Path(dir_okay=False, exists=True),
                     help="CA bundle to verify the registry's certificate with."),
        click.option("--timeout", type=float, default=60.0, show_default=True,
                     help="Timeout of each request, in seconds."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


_ignore_paths_option = click.option(
    "--ignore-paths",
    multiple=True,
    help="Paths to leave out, in gitignore syntax (comma-separated or repeated); replaces "
    "Flux's default list. .sourceignore files in the folder apply as well.",
)


def _ignore_paths(value: tuple[str, ...]) -> list[str] | None:
    """`--ignore-paths` as flux takes it: repeatable and comma-separated."""
    patterns = [p.strip() for item in value for p in item.split(",") if p.strip()]
    return patterns or None


def _reference(url: str) -> Reference:
    if not url.startswith(oci._reference.SCHEME):
        raise click.BadParameter(f"'{url}' must start with oci://", param_hint="URL")
    try:
        return Reference.parse(url)
    except OCIError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from exc


def _with_registry(
    make: Callable[[Registry], Awaitable[T]],
    ref: Reference,
    *,
    creds: str,
    insecure_registry: bool,
    ca_file: str | None,
    timeout: float,
) -> T:
    """Run `make` with a client of `ref`'s registry, configured from the registry flags."""

    async def main() -> T:
        async with Registry(
            ref.registry,
            credentials=Credentials.parse(creds) if creds else None,
            insecure=insecure_registry,
            ca_file=ca_file,
            timeout=timeout,
        ) as registry:
            return await make(registry)

    return asyncio.run(main())


def _run(
    make: Callable[[Registry], Awaitable[T]], ref: Reference, *, action: str, **registry: Any
) -> T:
    """`_with_registry`, with registry errors shown as `action: cause`."""
    try:
        return _with_registry(make, ref, **registry)
    except OCIError as exc:
        raise click.ClickException(f"{action}: {exc}") from exc


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when stdout is a terminal; nothing otherwise."""
    if not sys.stdout.isatty():
        yield None
        return
    bars: list[Any] = []

    def advance(count: int, total: int) -> None:
        if not bars:
            bar: Any = click.progressbar(length=total or None, label=label, file=sys.stderr,
                                    show_pos=False, show_percent=True)  # fmt: skip
            bars.append(bar.__enter__())
        bars[0].update(count)

    try:
        yield advance
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def _emit(data: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


# -- build -------------------------------------------------------------------------------


@click.command("artifact")
@click.option(
    "--path",
    "-p",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder to archive.",
)
@click.option(
    "--output",
    "-o",
    default="artifact.tgz",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Tarball to write.",
)
@_ignore_paths_option
@click.option(
    "--resolve-symlinks",
    is_flag=True,
    help="Archive the targets of symlinks that point inside the folder.",
)
def build_artifact(path: str, output: str, ignore_paths: tuple[str, ...],
                   resolve_symlinks: bool) -> None:  # fmt: skip
    """Build a reproducible tar+gzip of a folder, as the layer of an artifact."""
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb") as out:
            digest, size = oci.build_layer(
                Path(path), out, ignore_paths=_ignore_paths(ignore_paths),
                resolve_symlinks=resolve_symlinks,
            )  # fmt: skip
        partial.replace(target)
    except OCIError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"failed to build artifact: {exc}") from exc
    click.echo(f"artifact written to {target} ({size} bytes, {digest})", err=True)


# -- push --------------------------------------------------------------------------------


@click.group("push")
def push_group() -> None:
    """Push artifacts to OCI registries."""


@push_group.command("artifact")
@click.argument("url")
@click.option(
    "--path",
    "-f",
    required=True,
    type=click.Path(exists=True),
    help="Folder to archive, or a .tgz file to push as it is.",
)
@click.option(
    "--source",
    default="",
    help="Source address (org.opencontainers.image.source), e.g. the Git URL.",
)
@click.option(
    "--revision",
    default="",
    help="Source revision (org.opencontainers.image.revision), e.g. main@sha1:<commit>.",
)
@click.option(
    "--annotations",
    "-a",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra manifest annotation (repeatable).",
)
@_ignore_paths_option
@click.option(
    "--reproducible",
    is_flag=True,
    help="Fix the created time at 1970-01-01T00:00:00Z so the same content gives the "
    "same manifest digest.",
)
@click.option(
    "--resolve-symlinks",
    is_flag=True,
    help="Archive the targets of symlinks that point inside the folder.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["json", "yaml"]),
    default=None,
    help="Print the result as JSON or YAML instead of the digest.",
)
@_registry_options
def push_artifact(url: str, path: str, source: str, revision: str,
                  annotations: tuple[str, ...], ignore_paths: tuple[str, ...],
                  reproducible: bool, resolve_symlinks: bool, output: str | None,
                  **registry: Any) -> None:  # fmt: skip
    """Push a folder (or tarball) to URL (oci://HOST/REPO:TAG) as a Flux artifact."""
    ref = _reference(url)
    extra: dict[str, str] = {}
    for item in annotations:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not KEY=VALUE", param_hint="--annotations")
        extra[key] = value
    with _progress("pushing") as progress:
        result = _run(
            lambda registry: oci.push(
                registry, ref, Path(path), source=source, revision=revision,
                annotations=extra, ignore_paths=_ignore_paths(ignore_paths),
                reproducible=reproducible, resolve_symlinks=resolve_symlinks,
                progress=progress,
            ),
            ref, action=f"failed to push artifact to '{url}'", **registry,
        )  # fmt: skip
    click.echo(f"artifact pushed to {result.url}", err=True)
    if output:
        _emit(result.as_dict(), output)
    else:
        click.echo(result.digest)


# -- pull --------------------------------------------------------------------------------


@click.group("pull")
def pull_group() -> None:
    """Pull artifacts from OCI registries."""


@pull_group.command("artifact")
@click.argument("url")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to extract the artifact into.",
)
@click.option(
    "--layer-media-type",
    default=None,
    help=f"Media type of the layer to extract (default {oci.FLUX_CONTENT}).",
)
@click.option(
    "--max-size",
    type=int,
    default=oci.DEFAULT_MAX_SIZE,
    show_default=True,
    help="Largest uncompressed size, in bytes, the artifact may extract to.",
)
@_registry_options
def pull_artifact(url: str, output: str, layer_media_type: str | None, max_size: int,
                  **registry: Any) -> None:  # fmt: skip
    """Pull the artifact at URL (oci://HOST/REPO:TAG or @sha256:…) and extract it."""
    ref = _reference(url)
    with _progress("pulling") as progress:
        result = _run(
            lambda registry: oci.pull(
                registry, ref, Path(output), layer_media_type=layer_media_type,
                max_size=max_size, progress=progress,
            ),
            ref, action=f"failed to pull artifact from '{url}'", **registry,
        )  # fmt: skip
    source = result.annotations.get(oci.SOURCE, "")
    revision = result.annotations.get(oci.REVISION, "")
    click.echo(f"source {source or '-'} revision {revision or '-'} digest {result.digest}",
               err=True)  # fmt: skip
    click.echo(f"extracted {len(result.files)} files to {output}", err=True)


# -- tag ---------------------------------------------------------------------------------


@click.group("tag")
def tag_group() -> None:
    """Tag artifacts."""


@tag_group.command("artifact")
@click.argument("url")
@click.option(
    "--tag", "tag_values", multiple=True, required=True,
    help="New tag (repeatable or comma-separated).",
)  # fmt: skip
@_registry_options
def tag_artifact(url: str, tag_values: tuple[str, ...], **registry: Any) -> None:
    """Add tags to the artifact at URL."""
    ref = _reference(url)
    tags = [t.strip() for value in tag_values for t in value.split(",") if t.strip()]
    for new in tags:
        try:
            ref.with_tag(new)
        except OCIError as exc:
            raise click.BadParameter(str(exc), param_hint="--tag") from exc
    digest = _run(lambda registry: oci.tag(registry, ref, tags), ref,
                  action=f"failed to tag artifact '{url}'", **registry)  # fmt: skip
    for new in tags:
        click.echo(f"{ref.name}:{new}@{digest}")


# -- list --------------------------------------------------------------------------------


@click.group("list")
def list_group() -> None:
    """List artifacts."""


@list_group.command("artifacts")
@click.argument("url")
@click.option("--filter-regex", default=None, help="Only tags matching this regular expression.")
@click.option(
    "--filter-semver",
    default=None,
    help="Only tags that are versions in this semver range, newest first.",
)
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default="table")
@_registry_options
def list_artifacts(url: str, filter_regex: str | None, filter_semver: str | None, output: str,
                   **registry: Any) -> None:  # fmt: skip
    """List the artifacts of a repository (URL: oci://HOST/REPO), hiding .sig/.att/.sbom tags."""
    ref = _reference(url)
    try:
        listed = _run(
            lambda registry: oci.list_artifacts(
                registry, ref.repository, regex=filter_regex, semver=filter_semver
            ),
            ref, action=f"failed to list artifacts of '{url}'", **registry,
        )  # fmt: skip
    except ValueError as exc:  # semver.InvalidConstraint
        raise click.BadParameter(str(exc), param_hint="--filter-semver") from exc
    rows = [item.as_dict() for item in listed]
    if output != "table":
        _emit(rows, output)
        return
    click.echo(f"{'ARTIFACT':<50} {'DIGEST':<71} {'SOURCE':<30} {'REVISION':<30} CREATED")
    for row in rows:
        click.echo(f"{ref.name + ':' + row['tag']:<50} {row['digest']:<71} {row['source']:<30} "
                   f"{row['revision']:<30} {row['created']}")  # fmt: skip


# -- diff --------------------------------------------------------------------------------


@click.command("artifact")
@click.argument("url")
@click.option(
    "--path",
    required=True,
    type=click.Path(exists=True),
    help="Folder (or .tgz) to compare the artifact's content with.",
)
@_ignore_paths_option
@click.option("--layer-media-type", default=None, help="Media type of the artifact's layer.")
@_registry_options
def diff_artifact(url: str, path: str, ignore_paths: tuple[str, ...],
                  layer_media_type: str | None, **registry: Any) -> None:  # fmt: skip
    """Compare the artifact at URL with PATH by content.

    Exit code 0 when they hold the same files, 1 when they differ (the differences are
    listed), and 2 on error.
    """
    try:
        ref = _reference(url)
        result = _run(
            lambda registry: oci.diff(
                registry, ref, Path(path), ignore_paths=_ignore_paths(ignore_paths),
                layer_media_type=layer_media_type,
            ),
            ref, action=f"failed to diff artifact '{url}'", **registry,
        )  # fmt: skip
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(2)
    if result.same:
        click.echo("no changes", err=True)
        return
    for name in result.only_local:
        click.echo(f"+ {name}")
    for name in result.only_in_artifact:
        click.echo(f"- {name}")
    for name in result.changed:
        click.echo(f"~ {name}")
    sys.exit(1)
