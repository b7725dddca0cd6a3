"""`tidegate dev`: a local Kubernetes API server, etcd and OCI registry for development."""

from __future__ import annotations

import json
import sys

import click

from tidegate.testing import (
    AlreadyRunning,
    Environment,
    MissingPrerequisite,
    StartError,
    cosign_binary,
    find_binaries,
    flux_binary,
    notation_signer_binary,
    source_controller_binary,
)

DEFAULT_DIR = ".tidegate/dev"

_dir_option = click.option(
    "--dir",
    "directory",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder holding the environment's state, certificates, data and logs.",
)


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def dev() -> None:
    """Run a local environment: etcd, kube-apiserver and an OCI registry on 127.0.0.1."""


@dev.command()
@_dir_option
def up(directory: str) -> None:
    """Start the environment and print the variables that point tools at it.

    Use as: eval "$(tidegate dev up)". The processes keep running until `tidegate dev down`.
    """
    env = Environment(directory, detach=True, log=_say)
    try:
        env.start()
    except AlreadyRunning as exc:
        _say(f"{exc}; not starting another (stop it with: tidegate dev down --dir {directory})")
        click.echo(env.exports(), nl=False)
        return
    except (StartError, MissingPrerequisite) as exc:
        raise click.ClickException(str(exc)) from exc
    _say(f"environment running in {env.directory}")
    click.echo(env.exports(), nl=False)


@dev.command()
@click.option(
    "--flux",
    "with_flux",
    is_flag=True,
    help="Also provide the flux CLI (PATH, else built once from the Go module proxy), "
    "which compatibility tests and benchmarks run side by side with tidegate.",
)
@click.option(
    "--source-controller",
    "with_source_controller",
    is_flag=True,
    help="Also build Flux's source-controller (and keep its CRDs beside it) once from the Go "
    "module proxy, the peer of tidegate's source controller in benchmarks.",
)
@click.option(
    "--cosign",
    "with_cosign",
    is_flag=True,
    help="Also provide cosign 3 (PATH, else built once from the Go module proxy), the peer of "
    "tidegate's signatures in compatibility tests.",
)
@click.option(
    "--notation",
    "with_notation",
    is_flag=True,
    help="Also build tidegate-notation-sign once from the Go module proxy: `notation sign` on "
    "notation-go, for Notation compatibility tests.",
)
def prepare(
    with_flux: bool, with_source_controller: bool, with_cosign: bool, with_notation: bool
) -> None:
    """Install or build the environment's binaries now, without starting anything.

    kube-apiserver is built from the Go module proxy once per machine (a few minutes) and
    cached; etcd and the registry come from Debian packages. KUBEBUILDER_ASSETS takes
    precedence for kube-apiserver and etcd.
    """
    try:
        binaries = find_binaries(_say)
        flux = flux_binary(_say) if with_flux else None
        source = source_controller_binary(_say) if with_source_controller else None
        cosign = cosign_binary(_say) if with_cosign else None
        notation = notation_signer_binary(_say) if with_notation else None
    except MissingPrerequisite as exc:
        raise click.ClickException(str(exc)) from exc
    for name, path in vars(binaries).items():
        click.echo(f"{name.replace('_', '-')}: {path}")
    if flux:
        click.echo(f"flux: {flux}")
    if source:
        click.echo(f"source-controller: {source}")
        click.echo(f"source-controller-crds: {source.parent / 'crds'}")
    if cosign:
        click.echo(f"cosign: {cosign}")
    if notation:
        click.echo(f"notation-signer: {notation}")


@dev.command()
@_dir_option
def down(directory: str) -> None:
    """Stop exactly the processes `tidegate dev up` started in DIR."""
    env = Environment(directory, log=_say)
    if not env.state.processes:
        _say(f"no environment in {env.directory}")
        return
    try:
        stopped = env.stop()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    _say(
        "stopped "
        + (", ".join(stopped) if stopped else "nothing (no recorded process was running)")
    )


@dev.command()
@_dir_option
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def status(directory: str, output: str) -> None:
    """Report which of the environment's processes run; exit 1 unless all do."""
    env = Environment(directory)
    processes = env.state.processes
    alive = {p.pid: p.alive() for p in processes}
    healthy = bool(processes) and all(alive.values())
    rows = [
        {"name": p.name, "pid": p.pid, "running": alive[p.pid], "ports": p.ports, "log": p.log}
        for p in processes
    ]
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "directory": str(env.directory),
                    "running": healthy,
                    "kubeconfig": env.state.kubeconfig,
                    "apiserver": env.apiserver,
                    "registry": env.registry,
                    "processes": rows,
                },
                indent=2,
            )
        )
    elif not processes:
        click.echo(f"no environment in {env.directory}")
    else:
        click.echo(f"{'NAME':<16}{'PID':<9}{'STATUS':<10}PORTS")
        for p in processes:
            state = "running" if alive[p.pid] else "stopped"
            ports = ",".join(str(port) for port in p.ports)
            click.echo(f"{p.name:<16}{p.pid:<9}{state:<10}{ports}")
        click.echo(f"kubeconfig: {env.state.kubeconfig}")
        click.echo(f"registry:   {env.registry}")
    sys.exit(0 if healthy else 1)
