"""Top-level command group; each verb lives in a module of its own, imported on first use
so that `tidegate push …` does not pay for loading what `tidegate dev …` needs."""

from __future__ import annotations

import gc
import importlib
from typing import Any

import click

from tidegate import __version__

# verb → (module, attribute)
_VERBS = {
    "build": ("tidegate.cli._main", "build_group"),
    "push": ("tidegate.cli._artifact", "push_group"),
    "pull": ("tidegate.cli._artifact", "pull_group"),
    "tag": ("tidegate.cli._artifact", "tag_group"),
    "sign": ("tidegate.cli._sign", "sign_group"),
    "verify": ("tidegate.cli._sign", "verify_group"),
    "generate": ("tidegate.cli._sign", "generate_group"),
    "list": ("tidegate.cli._artifact", "list_group"),
    "diff": ("tidegate.cli._main", "diff_group"),
    "dev": ("tidegate.cli._dev", "dev"),
    "install": ("tidegate.cli._install", "install"),
    "controller": ("tidegate.cli._controller", "controller_group"),
    "create": ("tidegate.cli._objects", "create_group"),
    "get": ("tidegate.cli._objects", "get_group"),
    "reconcile": ("tidegate.cli._objects", "reconcile_group"),
    "suspend": ("tidegate.cli._objects", "suspend_group"),
    "resume": ("tidegate.cli._objects", "resume_group"),
    "kustomize": ("tidegate.cli._kustomize", "kustomize_group"),
    "tree": ("tidegate.cli._objects", "tree_group"),
    "trace": ("tidegate.cli._objects", "trace"),
    "events": ("tidegate.cli._objects", "events"),
}
_SUMMARIES = {
    "build": "Build artifacts, or a Kustomization's manifests locally.",
    "push": "Push artifacts to OCI registries.",
    "pull": "Pull artifacts from OCI registries.",
    "tag": "Tag artifacts.",
    "sign": "Sign artifacts with cosign keys.",
    "verify": "Verify the cosign or Notation signatures of artifacts.",
    "generate": "Generate cosign key pairs.",
    "list": "List artifacts.",
    "diff": "Compare artifacts or Kustomizations with local content.",
    "dev": "Run a local environment: etcd, kube-apiserver and an OCI registry.",
    "install": "Install tidegate's CustomResourceDefinitions on a cluster.",
    "controller": "Run the controllers.",
    "create": "Create or update sources and Kustomizations.",
    "get": "Show sources and Kustomizations and their status.",
    "reconcile": "Reconcile a source or Kustomization now and wait for the result.",
    "suspend": "Suspend the reconciliation of a source or Kustomization.",
    "resume": "Resume the reconciliation of a source or Kustomization.",
    "kustomize": "Build kustomizations as kustomize v5 does, in process.",
    "tree": "Show the objects a Kustomization applied, as a tree.",
    "trace": "Show which Kustomization, source and revision manage an object.",
    "events": "Show the events of objects, oldest first.",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _VERBS:
            return None
        module, attribute = _VERBS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Summaries without importing every verb's module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _SUMMARIES[name]) for name in sorted(_VERBS)])


class _Subcommands(click.Group):
    """A verb whose objects live in different modules (`build artifact`, `build
    kustomization`): each module is imported only when its subcommand runs, so artifact
    commands do not pay for loading the Kubernetes client."""

    def __init__(self, name: str, help: str, subcommands: dict[str, tuple[str, str]]) -> None:
        super().__init__(name, help=help)
        self.subcommands = subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.subcommands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.subcommands:
            return None
        module, attribute = self.subcommands[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


build_group = _Subcommands(
    "build",
    "Build artifacts, or a Kustomization's manifests locally.",
    {
        "artifact": ("tidegate.cli._artifact", "build_artifact"),
        "kustomization": ("tidegate.cli._objects", "build_kustomization"),
    },
)
diff_group = _Subcommands(
    "diff",
    "Compare artifacts or Kustomizations with local content.",
    {
        "artifact": ("tidegate.cli._artifact", "diff_artifact"),
        "kustomization": ("tidegate.cli._objects", "diff_kustomization"),
    },
)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="tidegate", message="%(prog)s %(version)s"
)
def cli() -> None:
    """tidegate keeps Kubernetes clusters in the state declared in versioned, signed
    artifacts (OCI, Git, Helm, S3), speaking Flux CD v2's API."""


def main(**kwargs: Any) -> None:
    """The `tidegate` command: runs `cli`, then leaves the interpreter quickly."""
    try:
        cli(**kwargs)
    finally:
        # Whatever is still alive now lives until the process ends. Frozen, it is left out
        # of the garbage collections the interpreter runs while shutting down, which
        # otherwise take ~50 ms for the modules a command loads (atexit handlers, and the
        # freeing of everything not in a reference cycle, still happen).
        gc.freeze()
