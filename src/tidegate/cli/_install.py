"""`tidegate install`: put tidegate's CustomResourceDefinitions on a cluster (or print them)."""

from __future__ import annotations

import asyncio
import sys

import click

from tidegate import api


def _say(message: str) -> None:
    click.echo(message, err=True)


def _mark(symbol: str, fallback: str) -> str:
    """flux's ✔ / ✗, or plain text where stderr cannot encode them."""
    encoding = getattr(sys.stderr, "encoding", None) or "ascii"
    try:
        symbol.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return fallback
    return symbol


@click.command("install")
@click.option("--crds-only", is_flag=True, help="Install only the CustomResourceDefinitions.")
@click.option(
    "--export", is_flag=True, help="Print the manifests as YAML instead of applying them."
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
)
@click.option("--context", help="Kubeconfig context to use (default: the current context).")
@click.option(
    "--timeout",
    default="5m0s",
    show_default=True,
    help="How long to wait for the CRDs to be established, as a duration (30s, 5m).",
)
def install(
    crds_only: bool, export: bool, kubeconfig: str | None, context: str | None, timeout: str
) -> None:
    """Install tidegate's CustomResourceDefinitions (Flux's kinds: OCIRepository, ...).

    Applies them server-side as field manager `tidegate` (taking over fields another manager,
    such as a Flux install, owns) and waits until the API server serves each one. With
    --export, prints them instead, as a YAML stream.
    """
    if not crds_only:
        raise click.UsageError(
            "only --crds-only is implemented so far: run 'tidegate install --crds-only'"
        )
    if export:
        click.echo(api.crds_yaml(), nl=False)
        return
    try:
        wait = api.parse_duration(timeout)
    except api.InvalidDuration as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from exc
    done = _mark("\u2714", "ok")

    async def main() -> None:
        from tidegate.kube import Client

        async with await Client.connect(kubeconfig, context) as client:
            await api.install_crds(
                client,
                timeout=wait,
                on_established=lambda name: _say(f"{done} {name} established"),
            )

    from tidegate.kube import KubeError

    try:
        asyncio.run(main())
    except (api.InstallError, KubeError) as exc:
        failed = _mark("\u2717", "error:")
        _say(f"{failed} install failed: {exc}")
        sys.exit(1)
