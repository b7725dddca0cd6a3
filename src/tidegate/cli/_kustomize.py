"""`tidegate kustomize build DIR`: what `kustomize build DIR` prints, built in process."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("kustomize")
def kustomize_group() -> None:
    """Build kustomizations as kustomize v5 does (sandboxed: no remote bases, no plugins)."""


@kustomize_group.command("build")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Directory nothing may be read outside of (default: the current directory when "
    "DIRECTORY is below it, else DIRECTORY).",
)
@click.option(
    "--load-restrictor",
    type=click.Choice(["LoadRestrictionsRootOnly", "LoadRestrictionsNone"]),
    default="LoadRestrictionsRootOnly",
    show_default=True,
    help="As kustomize's: with None, a kustomization may read files outside its own "
    "directory (never outside --root); Flux builds with None.",
)
def build(directory: Path, root: Path | None, load_restrictor: str) -> None:
    """Print the objects the kustomization in DIRECTORY makes, as a YAML stream.

    A directory without a kustomization file is built as Flux builds it: every YAML file
    below it (and every subdirectory with a kustomization) becomes a resource.
    """
    from tidegate import kustomize

    if root is None:
        here = Path.cwd().resolve()
        root = here if directory.resolve().is_relative_to(here) else directory
    try:
        result = kustomize.run(
            directory,
            root=root,
            load_restrictor="LoadRestrictionsNone"
            if load_restrictor == "LoadRestrictionsNone"
            else "LoadRestrictionsRootOnly",
        )
    except kustomize.KustomizeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    for warning in result.warnings:
        click.echo(warning, err=True)
    click.echo(kustomize.dump_all(result.resources.objects()), nl=False)
