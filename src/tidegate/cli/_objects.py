"""`tidegate create|get|reconcile|suspend|resume source oci`, as `flux` has them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import yaml

from tidegate import kube
from tidegate.api import format_duration, parse_duration

T = TypeVar("T")

DEFAULT_NAMESPACE = "flux-system"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


@dataclass(frozen=True)
class Kind:
    """How the CLI names one kind: `source oci` is OCIRepository."""

    api_version: str
    kind: str
    words: str  # as in `tidegate get sources oci` / `suspend source oci`


OCI = Kind("source.toolkit.fluxcd.io/v1", "OCIRepository", "source oci")


def _say(symbol: str, message: str) -> None:
    click.echo(f"{symbol} {message}", err=True)


def _cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True,
                     help="The namespace of the object."),
        click.option("--timeout", default="5m", show_default=True,
                     help="How long to wait for the controller, as a duration (30s, 5m)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _run(
    main: Callable[[kube.Client], Awaitable[T]], kubeconfig: str | None, context: str | None
) -> T:
    async def run() -> T:
        async with await kube.Client.connect(kubeconfig, context) as client:
            return await main(client)

    try:
        return asyncio.run(run())
    except (kube.KubeError, TimeoutError) as exc:
        _say("✗", str(exc) or "timed out")
        sys.exit(1)


def _seconds(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


async def _wait(
    client: kube.Client, kind: Kind, name: str, namespace: str, seconds: float,
    done: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:  # fmt: skip
    """Poll until `done(obj)`, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        obj = await client.get(kind.api_version, kind.kind, name, namespace)
        if done(obj):
            return obj
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out waiting for {kind.kind} '{namespace}/{name}' to be reconciled"
            )
        await asyncio.sleep(0.5)


def _settled(since_generation: bool, requested: str | None) -> Callable[[dict[str, Any]], bool]:
    """Done when the controller handled this request or generation and Ready is decided."""

    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        ready = _ready(obj)
        if ready is None or ready.get("status") == "Unknown":
            return False
        if requested is not None and status.get("lastHandledReconcileAt") != requested:
            return False
        generation = obj["metadata"].get("generation")
        return not (since_generation and ready.get("observedGeneration") != generation)

    return check


def _report(kind: Kind, obj: dict[str, Any]) -> None:
    ready = _ready(obj) or {}
    if ready.get("status") != "True":
        _say("✗", f"{kind.kind} reconciliation failed: {ready.get('message', '')}")
        sys.exit(1)
    _say("✔", f"{kind.kind} reconciliation completed")
    revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision")
    if revision:
        _say("✔", f"fetched revision: {revision}")


# -- create ---------------------------------------------------------------------------------


@click.group("create")
def create_group() -> None:
    """Create or update objects."""


@create_group.group("source")
def create_source() -> None:
    """Create or update sources."""


@create_source.command("oci")
@click.argument("name")
@click.option("--url", required=True, help="The OCI repository URL, oci://HOST/REPO (no tag).")
@click.option("--tag", default="", help="The artifact tag.")
@click.option("--tag-semver", default="", help="A semver range to pick the tag with.")
@click.option("--digest", default="", help="The artifact digest (sha256:…).")
@click.option("--secret-ref", default="", help="A docker-registry Secret with the credentials.")
@click.option(
    "--service-account", default="", help="A ServiceAccount whose imagePullSecrets apply."
)
@click.option("--cert-ref", default="", help="A Secret with ca.crt, tls.crt and tls.key.")
@click.option("--ignore-paths", multiple=True, help="Paths to leave out of the artifact "
              "(gitignore syntax; comma-separated or repeated).")  # fmt: skip
@click.option("--insecure", is_flag=True, help="Allow plain HTTP to the registry.")
@click.option("--interval", default="1m", show_default=True, help="How often to check.")
@click.option("--label", "labels", multiple=True,
              help="A label for the object, as KEY=VALUE (repeatable).")  # fmt: skip
@click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")
@_cluster_options
def create_source_oci(
    name: str, url: str, tag: str, tag_semver: str, digest: str, secret_ref: str,
    service_account: str, cert_ref: str, ignore_paths: tuple[str, ...], insecure: bool,
    interval: str, labels: tuple[str, ...], export: bool, kubeconfig: str | None,
    context: str | None, namespace: str, timeout: str,
) -> None:  # fmt: skip
    """Create or update an OCIRepository, then wait until it is reconciled."""
    if not url.startswith("oci://"):
        raise click.BadParameter("must start with oci://", param_hint="--url")
    spec: dict[str, Any] = {
        "interval": format_duration(_seconds(interval, "--interval")),
        "url": url,
    }
    ref = {"digest": digest, "semver": tag_semver, "tag": tag}
    ref = {k: v for k, v in ref.items() if v}
    if not ref:
        raise click.UsageError("one of --tag, --tag-semver or --digest is required")
    spec["ref"] = ref
    if secret_ref:
        spec["secretRef"] = {"name": secret_ref}
    if service_account:
        spec["serviceAccountName"] = service_account
    if cert_ref:
        spec["certSecretRef"] = {"name": cert_ref}
    patterns = [p.strip() for item in ignore_paths for p in item.split(",") if p.strip()]
    if patterns:
        spec["ignore"] = "\n".join(patterns)
    if insecure:
        spec["insecure"] = True
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        pairs = [label.partition("=") for label in labels]
        if any(not key or not sep for key, sep, _ in pairs):
            raise click.BadParameter("expected KEY=VALUE", param_hint="--label")
        metadata["labels"] = {key: value for key, _, value in pairs}
    obj = {"apiVersion": OCI.api_version, "kind": OCI.kind, "metadata": metadata, "spec": spec}
    if export:
        click.echo("---\n" + yaml.safe_dump(obj, sort_keys=True), nl=False)
        return
    wait = _seconds(timeout, "--timeout")

    async def main(client: kube.Client) -> dict[str, Any]:
        _say("►", f"applying {OCI.kind} source")
        # A create replaces the spec as a whole, as `flux create` does (an update, not a merge).
        applied = await client.apply(obj, field_manager="tidegate", force=True)
        _say("✔", f"{OCI.kind} source created")
        _say("◎", f"waiting for {OCI.kind} reconciliation")
        generation = applied["metadata"].get("generation")
        return await _wait(
            client, OCI, name, namespace, wait,
            lambda o: _settled(True, None)(o) and o["metadata"].get("generation") == generation,
        )  # fmt: skip

    _report(OCI, _run(main, kubeconfig, context))


# -- get ------------------------------------------------------------------------------------


@click.group("get")
def get_group() -> None:
    """Show objects and their status."""


@get_group.group("sources")
def get_sources() -> None:
    """Show sources."""


@get_sources.command("oci")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="List in all namespaces.")
@click.option("--status-selector", default="", help="Only objects whose condition matches, "
              "as type=status (e.g. ready=false).")  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@_cluster_options
def get_sources_oci(
    name: str | None, all_namespaces: bool, status_selector: str, output: str,
    kubeconfig: str | None, context: str | None, namespace: str, timeout: str,
) -> None:  # fmt: skip
    """Show OCIRepositories: revision, suspension and readiness, as `flux get` does."""

    async def main(client: kube.Client) -> list[dict[str, Any]]:
        if name:
            return [await client.get(OCI.api_version, OCI.kind, name, namespace)]
        listed = await client.list(OCI.api_version, OCI.kind, None if all_namespaces else namespace)
        return list(listed["items"])

    items = _run(main, kubeconfig, context)
    if status_selector:
        wanted_type, _, wanted = status_selector.partition("=")
        items = [
            o for o in items
            if any(c.get("type", "").lower() == wanted_type.lower()
                   and c.get("status", "").lower() == wanted.lower()
                   for c in (o.get("status") or {}).get("conditions") or [])
        ]  # fmt: skip
    if output == "json":
        click.echo(json.dumps(items, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump_all(items, sort_keys=True), nl=False)
        return
    if not items:
        _say("✗", f"no {OCI.kind} objects found in {'any' if all_namespaces else namespace} "
             "namespace")  # fmt: skip
        return
    header = ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        ready = _ready(obj) or {}
        row = [
            obj["metadata"]["name"],
            ((obj.get("status") or {}).get("artifact") or {}).get("revision", ""),
            "True" if (obj.get("spec") or {}).get("suspend") else "False",
            ready.get("status", "Unknown"),
            ready.get("message", ""),
        ]
        if all_namespaces:
            row.insert(0, obj["metadata"].get("namespace", ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        click.echo("\t".join([*cells, row[-1]]))


# -- reconcile, suspend, resume -------------------------------------------------------------


def _requested_at() -> str:
    # Any new value triggers a run; flux writes the current time in RFC 3339 with nanoseconds.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@click.group("reconcile")
def reconcile_group() -> None:
    """Ask the controllers to reconcile an object now, and wait for the result."""


@reconcile_group.group("source")
def reconcile_source() -> None:
    """Reconcile sources."""


@reconcile_source.command("oci")
@click.argument("name")
@_cluster_options
def reconcile_source_oci(
    name: str, kubeconfig: str | None, context: str | None, namespace: str, timeout: str
) -> None:
    """Set reconcile.fluxcd.io/requestedAt on an OCIRepository and wait for its reconcile."""
    wait = _seconds(timeout, "--timeout")

    async def main(client: kube.Client) -> dict[str, Any]:
        obj = await client.get(OCI.api_version, OCI.kind, name, namespace)
        if (obj.get("spec") or {}).get("suspend"):
            raise kube.KubeError(f"resource is suspended: {OCI.kind} '{namespace}/{name}'")
        _say("►", f"annotating {OCI.kind} {name} in {namespace} namespace")
        requested = _requested_at()
        await client.patch(
            OCI.api_version, OCI.kind, name,
            {"metadata": {"annotations": {REQUESTED_AT: requested}}}, namespace,
        )  # fmt: skip
        _say("✔", f"{OCI.kind} annotated")
        _say("◎", f"waiting for {OCI.kind} reconciliation")
        return await _wait(client, OCI, name, namespace, wait, _settled(False, requested))

    _report(OCI, _run(main, kubeconfig, context))


def _set_suspend(suspend: bool) -> Callable[..., None]:
    verb = "suspend" if suspend else "resume"

    @click.argument("name")
    @_cluster_options
    def command(
        name: str, kubeconfig: str | None, context: str | None, namespace: str, timeout: str
    ) -> None:
        wait = _seconds(timeout, "--timeout")

        async def main(client: kube.Client) -> dict[str, Any] | None:
            _say("►", f"{verb[:-1]}ing source oci {name} in {namespace} namespace")
            patch: dict[str, Any] = {"spec": {"suspend": suspend}}
            requested = None
            if not suspend:
                requested = _requested_at()
                patch["metadata"] = {"annotations": {REQUESTED_AT: requested}}
            await client.patch(OCI.api_version, OCI.kind, name, patch, namespace)
            _say("✔", f"source {verb}d")
            if suspend:
                return None
            _say("◎", f"waiting for {OCI.kind} reconciliation")
            return await _wait(client, OCI, name, namespace, wait, _settled(True, requested))

        obj = _run(main, kubeconfig, context)
        if obj is not None:
            _report(OCI, obj)

    command.__doc__ = (
        "Suspend reconciliation of an OCIRepository."
        if suspend
        else "Resume reconciliation of an OCIRepository and wait for its reconcile."
    )
    return command


@click.group("suspend")
def suspend_group() -> None:
    """Suspend reconciliation of objects."""


@suspend_group.group("source")
def suspend_source() -> None:
    """Suspend sources."""


suspend_source.command("oci")(_set_suspend(True))


@click.group("resume")
def resume_group() -> None:
    """Resume reconciliation of objects."""


@resume_group.group("source")
def resume_source() -> None:
    """Resume sources."""


resume_source.command("oci")(_set_suspend(False))
