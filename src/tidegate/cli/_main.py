"""Top-level command group; each verb lives in a module of its own."""

from __future__ import annotations

import click

from tidegate import __version__

from ._artifact import build_group, diff_group, list_group, pull_group, push_group, tag_group
from ._dev import dev


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="tidegate", message="%(prog)s %(version)s"
)
def cli() -> None:
    """tidegate keeps Kubernetes clusters in the state declared in versioned, signed
    artifacts (OCI, Git, Helm, S3), speaking Flux CD v2's API."""


for group in (build_group, push_group, pull_group, tag_group, list_group, diff_group, dev):
    cli.add_command(group)


def main() -> None:
    cli()
