"""`tidegate controller run`: run the controllers against the current cluster."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from tidegate.api import parse_duration


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group("controller")
def controller_group() -> None:
    """Run tidegate's controllers."""


@controller_group.command("run")
@click.option(
    "--controllers",
    default="source,kustomize",
    show_default=True,
    help=(
        "Comma-separated controllers to run. Available: source (OCIRepository), "
        "kustomize (Kustomization)."
    ),
)
@click.option(
    "--kubeconfig",
    envvar="KUBECONFIG",
    default=None,
    help="Path to a kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).",
)
@click.option("--context", default=None, help="The kubeconfig context to use.")
@click.option(
    "--storage-path",
    type=click.Path(file_okay=False),
    default="/data",
    show_default=True,
    help="Where artifacts are stored.",
)
@click.option(
    "--storage-addr",
    default=":9090",
    show_default=True,
    help="The address the artifact server binds to.",
)
@click.option(
    "--storage-adv-addr",
    default="",
    help="The address artifact URLs name (default: this host and the storage port).",
)
@click.option(
    "--metrics-addr", default=":8080", show_default=True, help="The address /metrics is served on."
)
@click.option(
    "--health-addr",
    default=":9440",
    show_default=True,
    help="The address /healthz and /readyz are served on.",
)
@click.option(
    "--concurrent",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Objects of each kind reconciled at the same time.",
)
@click.option(
    "--kube-api-qps",
    type=float,
    default=50.0,
    show_default=True,
    help="Requests per second to the API server.",
)
@click.option(
    "--kube-api-burst",
    type=int,
    default=300,
    show_default=True,
    help="Burst of requests to the API server.",
)
@click.option(
    "--artifact-retention-records",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Artifacts kept per object.",
)
@click.option(
    "--min-retry-delay",
    default="750ms",
    show_default=True,
    callback=_duration,
    help="First delay before a failed reconcile is retried.",
)
@click.option(
    "--max-retry-delay",
    default="15m",
    show_default=True,
    callback=_duration,
    help="Longest delay between retries.",
)
@click.option(
    "--watch-label-selector",
    default="",
    help="Reconcile only objects whose labels match this selector (to shard objects over "
    "several controller processes).",
)
@click.option(
    "--requeue-dependency",
    default="30s",
    show_default=True,
    callback=_duration,
    help="How long a Kustomization waits before checking its dependencies again.",
)
@click.option(
    "--default-service-account",
    default="",
    help="The ServiceAccount impersonated by Kustomizations without spec.serviceAccountName.",
)
@click.option(
    "--no-cross-namespace-refs",
    is_flag=True,
    help="Refuse references (sourceRef, dependsOn) to objects in another namespace.",
)
@click.option(
    "--enable-leader-election",
    is_flag=True,
    help="Run only while holding a Lease, so that replicas take over from each other.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "error"]), default="info", show_default=True
)
@click.option(
    "--log-encoding", type=click.Choice(["json", "console"]), default="json", show_default=True
)
def run(
    controllers: str, kubeconfig: str | None, context: str | None, storage_path: str,
    storage_addr: str, storage_adv_addr: str, metrics_addr: str, health_addr: str,
    concurrent: int, kube_api_qps: float, kube_api_burst: int, artifact_retention_records: int,
    min_retry_delay: float, max_retry_delay: float, watch_label_selector: str,
    requeue_dependency: float, default_service_account: str, no_cross_namespace_refs: bool,
    enable_leader_election: bool,
    log_level: str, log_encoding: str,
) -> None:  # fmt: skip
    """Reconcile Flux objects until stopped (SIGTERM or Ctrl-C lets reconciles in flight
    finish). Logs are JSON lines on stderr."""
    from tidegate.controllers import CONTROLLERS, Options
    from tidegate.controllers import run as run_controllers
    from tidegate.runtime import configure_logging

    chosen = tuple(c.strip() for c in controllers.split(",") if c.strip())
    unknown = sorted(set(chosen) - set(CONTROLLERS))
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown controller(s) {', '.join(unknown) or '(none)'}; available: "
            + ", ".join(CONTROLLERS),
            param_hint="--controllers",
        )
    configure_logging(log_level, json=log_encoding == "json", stream=sys.stderr)
    options = Options(
        controllers=chosen,
        kubeconfig=kubeconfig,
        context=context,
        storage_path=Path(storage_path),
        storage_addr=storage_addr,
        storage_adv_addr=storage_adv_addr,
        metrics_addr=metrics_addr,
        health_addr=health_addr,
        concurrent=concurrent,
        qps=kube_api_qps,
        burst=kube_api_burst,
        artifact_retention_records=artifact_retention_records,
        min_retry_delay=min_retry_delay,
        max_retry_delay=max_retry_delay,
        leader_election=enable_leader_election,
        watch_label_selector=watch_label_selector or None,
        requeue_dependency=requeue_dependency,
        default_service_account=default_service_account,
        no_cross_namespace_refs=no_cross_namespace_refs,
    )
    asyncio.run(run_controllers(options))
