"""`tidegate create|get|reconcile|suspend|resume source oci|kustomization`, `build|diff|tree
kustomization`, `trace` and `events`, as `flux` has them."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from tidegate import kube
from tidegate.api import format_duration, parse_duration

T = TypeVar("T")

DEFAULT_NAMESPACE = "flux-system"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
FIELD_MANAGER = "kustomize-controller"


def _artifact_revision(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("artifact") or {}).get("revision") or "")


def _applied_revision(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("lastAppliedRevision") or "")


@dataclass(frozen=True)
class Kind:
    """How the CLI names one kind: `source oci` is OCIRepository."""

    api_version: str
    kind: str
    words: str  # as in `tidegate suspend source oci` / `suspend kustomization`
    noun: str  # as in `✔ source suspended` / `✔ kustomization suspended`
    revision: Callable[[dict[str, Any]], str]  # the REVISION column
    done: str  # as in `✔ fetched revision: …` / `✔ applied revision …`


OCI = Kind(
    "source.toolkit.fluxcd.io/v1", "OCIRepository", "source oci", "source",
    _artifact_revision, "fetched revision: ",
)  # fmt: skip
KUSTOMIZATION = Kind(
    f"{KUSTOMIZE_GROUP}/v1", "Kustomization", "kustomization", "kustomization",
    _applied_revision, "applied revision ",
)  # fmt: skip
# The kinds a Kustomization's sourceRef may name.
SOURCES = {
    "OCIRepository": OCI,
    **{
        name: Kind("source.toolkit.fluxcd.io/v1", name, f"source {word}", "source",
                   _artifact_revision, "fetched revision: ")
        for name, word in (("GitRepository", "git"), ("Bucket", "bucket"))
    },
}  # fmt: skip


def _say(symbol: str, message: str) -> None:
    click.echo(f"{symbol} {message}", err=True)


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--kubeconfig", envvar="KUBECONFIG", default=None,
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True,
                     help="The namespace of the object."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--timeout", default="5m", show_default=True,
        help="How long to wait for the controller, as a duration (30s, 5m).",
    )(command)  # fmt: skip
    return _connection_options(command)


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


def _labels(labels: tuple[str, ...]) -> dict[str, str]:
    pairs = [label.partition("=") for label in labels]
    if any(not key or not sep for key, sep, _ in pairs):
        raise click.BadParameter("expected KEY=VALUE", param_hint="--label")
    return {key: value for key, _, value in pairs}


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


def _outcome(kind: Kind, obj: dict[str, Any]) -> str | None:
    """Report a reconcile's result; the failure message, if it failed."""
    ready = _ready(obj) or {}
    if ready.get("status") != "True":
        return f"{kind.kind} reconciliation failed: {ready.get('message', '')}"
    _say("✔", f"{kind.kind} reconciliation completed")
    revision = kind.revision(obj)
    if revision:
        _say("✔", f"{kind.done}{revision}")
    return None


def _report(kind: Kind, obj: dict[str, Any]) -> None:
    failure = _outcome(kind, obj)
    if failure is not None:
        _say("✗", failure)
        sys.exit(1)


def _create(
    kind: Kind, obj: dict[str, Any], what: str, timeout: str, kubeconfig: str | None,
    context: str | None,
) -> None:  # fmt: skip
    """Apply `obj` (the spec replaced as a whole, as `flux create` updates) and wait for it."""
    wait = _seconds(timeout, "--timeout")
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]

    async def main(client: kube.Client) -> dict[str, Any]:
        _say("►", f"applying {what}")
        applied = await client.apply(obj, field_manager="tidegate", force=True)
        _say("✔", f"{what} created")
        _say("◎", f"waiting for {kind.kind} reconciliation")
        generation = applied["metadata"].get("generation")
        return await _wait(
            client, kind, name, namespace, wait,
            lambda o: _settled(True, None)(o) and o["metadata"].get("generation") == generation,
        )  # fmt: skip

    _report(kind, _run(main, kubeconfig, context))


def _export(obj: dict[str, Any]) -> None:
    click.echo("---\n" + yaml.safe_dump(obj, sort_keys=True, allow_unicode=True), nl=False)


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
        metadata["labels"] = _labels(labels)
    obj = {"apiVersion": OCI.api_version, "kind": OCI.kind, "metadata": metadata, "spec": spec}
    if export:
        _export(obj)
        return
    _create(OCI, obj, f"{OCI.kind} source", timeout, kubeconfig, context)


_HEALTH_CHECK_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "HelmRelease"}


def _source_ref(text: str) -> dict[str, str]:
    """`[<kind>/]<name>[.<namespace>]`, GitRepository by default, as flux parses --source."""
    kind, _, rest = text.rpartition("/")
    kind = kind or "GitRepository"
    if kind not in SOURCES:
        raise click.BadParameter(
            f"source kind '{kind}' is not supported, must be one of: " + ", ".join(sorted(SOURCES)),
            param_hint="--source",
        )
    name, _, namespace = rest.partition(".")
    if not name:
        raise click.BadParameter("no name given", param_hint="--source")
    ref = {"kind": kind, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def _health_check(text: str) -> dict[str, str]:
    kind, sep, rest = text.partition("/")
    if not sep or "/" in rest:
        raise click.BadParameter(
            f"invalid health check '{text}' must be in the format 'kind/name.namespace'",
            param_hint="--health-check",
        )
    if kind not in _HEALTH_CHECK_KINDS:
        raise click.BadParameter(
            f"invalid health check kind '{kind}' can be HelmRelease, Deployment, DaemonSet or "
            "StatefulSet",
            param_hint="--health-check",
        )
    parts = rest.split(".")
    if len(parts) != 2:
        raise click.BadParameter(
            f"invalid health check '{text}' must be in the format 'kind/name.namespace'",
            param_hint="--health-check",
        )
    check = {"kind": kind, "name": parts[0], "namespace": parts[1]}
    if kind == "HelmRelease":
        check["apiVersion"] = "helm.toolkit.fluxcd.io/v2"
    return check


def _depends_on(values: tuple[str, ...]) -> list[dict[str, str]]:
    refs = []
    for value in (v.strip() for item in values for v in item.split(",")):
        if not value:
            continue
        namespace, _, name = value.rpartition("/")
        refs.append({"name": name, "namespace": namespace} if namespace else {"name": name})
    return refs


@create_group.command("kustomization")
@click.argument("name")
@click.option("--source", required=True, help="The source, as [<kind>/]<name>.<namespace> "
              "(OCIRepository, GitRepository or Bucket; GitRepository by default).")  # fmt: skip
@click.option("--path", default="./", show_default=True,
              help="The directory with the kustomization, starting with ./.")  # fmt: skip
@click.option("--prune", is_flag=True, help="Enable garbage collection.")
@click.option("--wait", is_flag=True, help="Enable health checking of all applied resources.")
@click.option("--health-check", "health_checks", multiple=True, help="A workload to include in "
              "the health assessment, as <kind>/<name>.<namespace> (repeatable).")  # fmt: skip
@click.option("--health-check-timeout", default="2m", show_default=True,
              help="Timeout of health checking operations.")  # fmt: skip
@click.option("--depends-on", multiple=True, help="A Kustomization that must be ready first, "
              "as <name> or <namespace>/<name> (repeatable, or comma-separated).")  # fmt: skip
@click.option("--service-account", default="", help="The ServiceAccount to impersonate.")
@click.option("--target-namespace", default="", help="The namespace of all applied objects.")
@click.option("--retry-interval", default="", help="How often to retry a failed reconcile.")
@click.option("--interval", default="1m", show_default=True, help="How often to reconcile.")
@click.option("--label", "labels", multiple=True,
              help="A label for the object, as KEY=VALUE (repeatable).")  # fmt: skip
@click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")
@_cluster_options
def create_kustomization(
    name: str, source: str, path: str, prune: bool, wait: bool, health_checks: tuple[str, ...],
    health_check_timeout: str, depends_on: tuple[str, ...], service_account: str,
    target_namespace: str, retry_interval: str, interval: str, labels: tuple[str, ...],
    export: bool, kubeconfig: str | None, context: str | None, namespace: str, timeout: str,
) -> None:  # fmt: skip
    """Create or update a Kustomization, then wait until it is reconciled."""
    if not path.startswith("./"):
        raise click.BadParameter("path must begin with ./", param_hint="--path")
    spec: dict[str, Any] = {
        "interval": format_duration(_seconds(interval, "--interval")),
        "path": path,
        "prune": prune,  # never omitted, as in Flux's API
        "sourceRef": _source_ref(source),
    }
    dependencies = _depends_on(depends_on)
    if dependencies:
        spec["dependsOn"] = dependencies
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    health_timeout = format_duration(_seconds(health_check_timeout, "--health-check-timeout"))
    if health_checks and not wait:
        spec["healthChecks"] = [_health_check(check) for check in health_checks]
        spec["timeout"] = health_timeout
    if wait:
        spec["wait"] = True
        spec["timeout"] = health_timeout
    if service_account:
        spec["serviceAccountName"] = service_account
    if retry_interval:
        spec["retryInterval"] = format_duration(_seconds(retry_interval, "--retry-interval"))
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = _labels(labels)
    obj = {
        "apiVersion": KUSTOMIZATION.api_version, "kind": KUSTOMIZATION.kind,
        "metadata": metadata, "spec": spec,
    }  # fmt: skip
    if export:
        _export(obj)
        return
    _say("✚", "generating Kustomization")
    _create(KUSTOMIZATION, obj, "Kustomization", timeout, kubeconfig, context)


# -- get ------------------------------------------------------------------------------------


def _get_command(kind: Kind) -> Callable[..., Any]:
    @click.argument("name", required=False)
    @click.option("-A", "--all-namespaces", is_flag=True, help="List in all namespaces.")
    @click.option("--status-selector", default="", help="Only objects whose condition matches, "
                  "as type=status (e.g. ready=false).")  # fmt: skip
    @click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
    @_cluster_options
    def command(
        name: str | None, all_namespaces: bool, status_selector: str, output: str,
        kubeconfig: str | None, context: str | None, namespace: str, timeout: str,
    ) -> None:  # fmt: skip
        async def main(client: kube.Client) -> list[dict[str, Any]]:
            if name:
                return [await client.get(kind.api_version, kind.kind, name, namespace)]
            listed = await client.list(
                kind.api_version, kind.kind, None if all_namespaces else namespace
            )
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
            where = "any" if all_namespaces else namespace
            _say("✗", f"no {kind.kind} objects found in {where} namespace")
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
                kind.revision(obj),
                "True" if (obj.get("spec") or {}).get("suspend") else "False",
                ready.get("status", "Unknown"),
                ready.get("message", ""),
            ]
            if all_namespaces:
                row.insert(0, obj["metadata"].get("namespace", ""))
            rows.append(row)
        _table(rows)

    command.__doc__ = (
        f"Show {kind.kind} objects: revision, suspension and readiness, as `flux get` does."
    )
    return command


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        click.echo("\t".join([*cells, row[-1]]))


@click.group("get")
def get_group() -> None:
    """Show objects and their status."""


@get_group.group("sources")
def get_sources() -> None:
    """Show sources."""


get_sources.command("oci")(_get_command(OCI))
get_group.command("kustomizations")(_get_command(KUSTOMIZATION))


# -- reconcile, suspend, resume -------------------------------------------------------------


def _requested_at() -> str:
    # Any new value triggers a run; flux writes the current time in RFC 3339 with nanoseconds.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


async def _request(
    client: kube.Client, kind: Kind, name: str, namespace: str, wait: float
) -> dict[str, Any]:
    """Annotate with requestedAt and wait until the controller handled it."""
    obj = await client.get(kind.api_version, kind.kind, name, namespace)
    if (obj.get("spec") or {}).get("suspend"):
        raise kube.KubeError(f"resource is suspended: {kind.kind} '{namespace}/{name}'")
    _say("►", f"annotating {kind.kind} {name} in {namespace} namespace")
    requested = _requested_at()
    await client.patch(
        kind.api_version, kind.kind, name,
        {"metadata": {"annotations": {REQUESTED_AT: requested}}}, namespace,
    )  # fmt: skip
    _say("✔", f"{kind.kind} annotated")
    _say("◎", f"waiting for {kind.kind} reconciliation")
    return await _wait(client, kind, name, namespace, wait, _settled(False, requested))


def _reconcile_command(kind: Kind) -> Callable[..., Any]:
    @click.argument("name")
    @_cluster_options
    def command(
        name: str, kubeconfig: str | None, context: str | None, namespace: str, timeout: str,
        with_source: bool = False,
    ) -> None:  # fmt: skip
        wait = _seconds(timeout, "--timeout")

        async def main(client: kube.Client) -> dict[str, Any]:
            if with_source:
                obj = await client.get(kind.api_version, kind.kind, name, namespace)
                ref = (obj.get("spec") or {}).get("sourceRef") or {}
                source = SOURCES.get(ref.get("kind", ""))
                if source is None:
                    raise kube.KubeError(f"source kind '{ref.get('kind')}' is not supported")
                got = await _request(
                    client, source, ref["name"], ref.get("namespace") or namespace, wait
                )
                failure = _outcome(source, got)
                if failure is not None:
                    raise kube.KubeError(failure)
            return await _request(client, kind, name, namespace, wait)

        _report(kind, _run(main, kubeconfig, context))

    if kind.kind == "Kustomization":
        command = click.option(
            "--with-source", is_flag=True, help="Reconcile the source first, and wait for it."
        )(command)
    command.__doc__ = f"Set reconcile.fluxcd.io/requestedAt on a {kind.kind} and wait for it."
    return command


def _set_suspend(kind: Kind, suspend: bool) -> Callable[..., Any]:
    doing, done = ("suspending", "suspended") if suspend else ("resuming", "resumed")

    @click.argument("name")
    @_cluster_options
    def command(
        name: str, kubeconfig: str | None, context: str | None, namespace: str, timeout: str
    ) -> None:
        wait = _seconds(timeout, "--timeout")

        async def main(client: kube.Client) -> dict[str, Any] | None:
            _say("►", f"{doing} {kind.words} {name} in {namespace} namespace")
            patch: dict[str, Any] = {"spec": {"suspend": suspend}}
            requested = None
            if not suspend:
                requested = _requested_at()
                patch["metadata"] = {"annotations": {REQUESTED_AT: requested}}
            await client.patch(kind.api_version, kind.kind, name, patch, namespace)
            _say("✔", f"{kind.noun} {done}")
            if suspend:
                return None
            _say("◎", f"waiting for {kind.kind} reconciliation")
            return await _wait(client, kind, name, namespace, wait, _settled(True, requested))

        obj = _run(main, kubeconfig, context)
        if obj is not None:
            _report(kind, obj)

    command.__doc__ = (
        f"Suspend reconciliation of a {kind.kind}."
        if suspend
        else f"Resume reconciliation of a {kind.kind} and wait for its reconcile."
    )
    return command


@click.group("reconcile")
def reconcile_group() -> None:
    """Ask the controllers to reconcile an object now, and wait for the result."""


@reconcile_group.group("source")
def reconcile_source() -> None:
    """Reconcile sources."""


@click.group("suspend")
def suspend_group() -> None:
    """Suspend reconciliation of objects."""


@suspend_group.group("source")
def suspend_source() -> None:
    """Suspend sources."""


@click.group("resume")
def resume_group() -> None:
    """Resume reconciliation of objects."""


@resume_group.group("source")
def resume_source() -> None:
    """Resume sources."""


for _kind, _reconcile, _suspend, _resume in (
    (OCI, reconcile_source, suspend_source, resume_source),
    (KUSTOMIZATION, reconcile_group, suspend_group, resume_group),
):
    _word = _kind.words.split()[-1]
    _reconcile.command(_word)(_reconcile_command(_kind))
    _suspend.command(_word)(_set_suspend(_kind, True))
    _resume.command(_word)(_set_suspend(_kind, False))


# -- build, diff ----------------------------------------------------------------------------


def _read_kustomization(file: Path, name: str, namespace: str) -> dict[str, Any]:
    """The Kustomization NAME from a YAML file (the first one, when none is named NAME)."""
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(str(exc), param_hint="--kustomization-file") from exc
    found = [d for d in documents if d.get("kind") == KUSTOMIZATION.kind]
    named = [d for d in found if (d.get("metadata") or {}).get("name") == name]
    if not (named or found):
        raise click.BadParameter(f"no Kustomization in {file}", param_hint="--kustomization-file")
    obj = dict((named or found)[0])
    obj["metadata"] = {"namespace": namespace, **(obj.get("metadata") or {}), "name": name}
    return obj


async def _substitute_from(client: kube.Client, obj: dict[str, Any]) -> list[dict[str, str]]:
    """The data of the `substituteFrom` ConfigMaps and Secrets, in order, as the controller."""
    import base64

    sources = []
    post = (obj.get("spec") or {}).get("postBuild") or {}
    for ref in post.get("substituteFrom") or []:
        try:
            got = await client.get("v1", ref["kind"], ref["name"], obj["metadata"]["namespace"])
        except kube.NotFound:
            if ref.get("optional"):
                continue
            raise
        data = dict(got.get("data") or {})
        if ref["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        sources.append(data)
    return sources


def _render(obj: dict[str, Any], path: Path, sources: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Build `path` as the controller builds the Kustomization `obj`'s path: Flux's
    kustomization, postBuild substitution, and the owner labels the apply adds."""
    from tidegate import envsubst, kustomize
    from tidegate.apply import owner_labels_for

    spec = dict(obj.get("spec") or {})
    here = Path.cwd().resolve()
    root = here if path.resolve().is_relative_to(here) else path
    built = kustomize.build_for_spec(path, spec, root=root)
    for warning in built.warnings:
        click.echo(warning, err=True)
    objects = [dict(resource.obj) for resource in built.resources]
    post = spec.get("postBuild")
    if post is not None:
        variables = envsubst.post_build_variables(sources, dict(post.get("substitute") or {}))
        always = post.get("substituteStrategy") == "Always"
        objects = [envsubst.substitute_object(o, variables, always=always) for o in objects]
    labels = owner_labels_for(obj["metadata"]["name"], obj["metadata"]["namespace"])
    for item in objects:
        metadata = item.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    return objects


def _render_or_exit(
    obj: dict[str, Any], path: Path, sources: list[dict[str, str]], code: int
) -> list[dict[str, Any]]:
    from tidegate import envsubst, kustomize

    try:
        return _render(obj, path, sources)
    except (kustomize.KustomizeError, envsubst.SubstitutionError, ValueError, OSError) as exc:
        _say("✗", str(exc))
        sys.exit(code)


_path_option = click.option(
    "--path", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The local directory with the manifests of the Kustomization's path.",
)  # fmt: skip
_file_option = click.option(
    "--kustomization-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None, help="Read the Kustomization from this file instead of the cluster.",
)  # fmt: skip


@click.command("kustomization")
@click.argument("name")
@_path_option
@_file_option
@click.option("--dry-run", is_flag=True, help="Do not connect to the cluster at all "
              "(needs --kustomization-file; substituteFrom is left out).")  # fmt: skip
@_connection_options
def build_kustomization(
    name: str, path: Path, kustomization_file: Path | None, dry_run: bool,
    kubeconfig: str | None, context: str | None, namespace: str,
) -> None:  # fmt: skip
    """Build a Kustomization's manifests locally, as the controller would, and print them."""
    from tidegate import kustomize

    if dry_run and kustomization_file is None:
        raise click.UsageError("dry-run mode requires a kustomization file")
    from_file = None
    if kustomization_file is not None:
        from_file = _read_kustomization(kustomization_file, name, namespace)

    async def main(client: kube.Client) -> tuple[dict[str, Any], list[dict[str, str]]]:
        obj = from_file or await client.get(
            KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, namespace
        )
        return obj, await _substitute_from(client, obj)

    if dry_run and from_file is not None:
        obj, sources = from_file, list[dict[str, str]]()
    else:
        obj, sources = _run(main, kubeconfig, context)
    objects = _render_or_exit(obj, path, sources, 1)
    click.echo(kustomize.dump_all(objects), nl=False)


_VOLATILE = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp")


def _comparable(obj: dict[str, Any]) -> str:
    clean = {k: v for k, v in obj.items() if k != "status"}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE}
    clean["metadata"] = metadata
    return yaml.safe_dump(clean, sort_keys=True)


def _subject(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    if meta.get("namespace"):
        return f"{obj.get('kind')}/{meta['namespace']}/{meta.get('name')}"
    return f"{obj.get('kind')}/{meta.get('name')}"


@click.command("kustomization")
@click.argument("name")
@_path_option
@_file_option
@_connection_options
def diff_kustomization(
    name: str, path: Path, kustomization_file: Path | None, kubeconfig: str | None,
    context: str | None, namespace: str,
) -> None:  # fmt: skip
    """Compare a local build of a Kustomization with the cluster, by server-side dry-run.

    Exits 0 when nothing would change, 1 when something would, 2 on error.
    """
    from tidegate.apply import Inventory, has_drifted

    async def main(client: kube.Client) -> bool:
        live_ks: dict[str, Any] | None = None
        try:
            live_ks = await client.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name,
                                       namespace)  # fmt: skip
        except kube.NotFound:
            if kustomization_file is None:
                raise
        obj = (
            _read_kustomization(kustomization_file, name, namespace)
            if kustomization_file is not None
            else live_ks
        )
        assert obj is not None
        objects = _render_or_exit(obj, path, await _substitute_from(client, obj), 2)
        changed = False
        seen = set()
        for item in objects:
            meta = item["metadata"]
            seen.add((item.get("kind"), meta.get("namespace") or "", meta.get("name")))
            try:
                live: dict[str, Any] | None = await client.get(
                    item["apiVersion"], item["kind"], meta["name"], meta.get("namespace")
                )
            except kube.NotFound:
                live = None
            dry = await client.apply(item, field_manager=FIELD_MANAGER, force=True, dry_run=True)
            if live is None:
                click.echo(f"► {_subject(item)} created")
                changed = True
            elif has_drifted(live, dry):
                click.echo(f"► {_subject(item)} drifted")
                lines = difflib.unified_diff(
                    _comparable(live).splitlines(keepends=True),
                    _comparable(dry).splitlines(keepends=True),
                    fromfile="live", tofile="merged",
                )  # fmt: skip
                click.echo("".join(lines), nl=False)
                changed = True
        if live_ks is not None and (live_ks.get("spec") or {}).get("prune"):
            inventory = Inventory.from_status((live_ks.get("status") or {}).get("inventory"))
            for entry in inventory.entries:
                m = entry.metadata
                if (m.kind, m.namespace, m.name) not in seen:
                    click.echo(f"► {m.subject} deleted")
                    changed = True
        return changed

    async def run() -> bool:
        async with await kube.Client.connect(kubeconfig, context) as client:
            return await main(client)

    try:
        changed = asyncio.run(run())
    except (kube.KubeError, TimeoutError) as exc:
        _say("✗", str(exc) or "timed out")
        sys.exit(2)
    sys.exit(1 if changed else 0)


# -- tree, trace, events --------------------------------------------------------------------


async def _tree_lines(
    client: kube.Client, name: str, namespace: str, prefix: str, seen: set[str]
) -> list[str]:
    from tidegate.apply import Inventory

    obj = await client.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, namespace)
    entries = Inventory.from_status((obj.get("status") or {}).get("inventory")).entries
    lines = []
    for i, entry in enumerate(entries):
        meta = entry.metadata
        last = i == len(entries) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{meta.subject}")
        nested = meta.group == KUSTOMIZE_GROUP and meta.kind == KUSTOMIZATION.kind
        if nested and meta.id not in seen:
            seen.add(meta.id)
            with contextlib.suppress(kube.NotFound):
                lines += await _tree_lines(
                    client, meta.name, meta.namespace, prefix + ("    " if last else "│   "),
                    seen,
                )  # fmt: skip
    return lines


@click.group("tree")
def tree_group() -> None:
    """Show the objects a Kustomization applied, as a tree."""


@tree_group.command("kustomization")
@click.argument("name")
@_connection_options
def tree_kustomization(
    name: str, kubeconfig: str | None, context: str | None, namespace: str
) -> None:
    """Print the inventory of a Kustomization, nested Kustomizations expanded."""

    async def main(client: kube.Client) -> list[str]:
        return await _tree_lines(client, name, namespace, "", set())

    lines = _run(main, kubeconfig, context)
    click.echo("\n".join([f"{KUSTOMIZATION.kind}/{namespace}/{name}", *lines]))


_API_VERSIONS = {
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"), "apps/v1"),
    **dict.fromkeys(("Job", "CronJob"), "batch/v1"),
    "Ingress": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


def _last_reconciled(obj: dict[str, Any]) -> str:
    ready = _ready(obj) or {}
    return f"Last reconciled at {ready.get('lastTransitionTime', '')}"


@click.command("trace")
@click.argument("kind")
@click.argument("name")
@click.option("--api-version", default="", help="The object's API version "
              "(default: apps/v1 for workloads, v1 otherwise).")  # fmt: skip
@_connection_options
def trace(
    kind: str, name: str, api_version: str, kubeconfig: str | None, context: str | None,
    namespace: str,
) -> None:  # fmt: skip
    """Show which Kustomization, source and revision manage the object KIND NAME."""
    api_version = api_version or _API_VERSIONS.get(kind, "v1")

    async def main(client: kube.Client) -> list[tuple[str, str]]:
        obj = await client.get(api_version, kind, name, namespace)
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        owner = labels.get(f"{KUSTOMIZE_GROUP}/name")
        owner_ns = labels.get(f"{KUSTOMIZE_GROUP}/namespace")
        rows = [(kind, name)]
        if meta.get("namespace"):
            rows.append(("Namespace", meta["namespace"]))
        if not owner or not owner_ns:
            rows.append(("Status", "Unmanaged"))
            return rows
        rows += [("Status", "Managed by Flux"), ("---", "")]
        ks = await client.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, owner, owner_ns)
        status = ks.get("status") or {}
        rows += [
            (KUSTOMIZATION.kind, owner), ("Namespace", owner_ns),
            ("Path", str((ks.get("spec") or {}).get("path", ""))),
            ("Revision", str(status.get("lastAppliedRevision", ""))),
            ("Status", _last_reconciled(ks)),
            ("Message", str((_ready(ks) or {}).get("message", ""))),
        ]  # fmt: skip
        ref = (ks.get("spec") or {}).get("sourceRef") or {}
        source = SOURCES.get(ref.get("kind", ""))
        if source is None:
            return rows
        src = await client.get(
            source.api_version, source.kind, ref["name"], ref.get("namespace") or owner_ns
        )
        spec = src.get("spec") or {}
        rows += [
            ("---", ""), (source.kind, ref["name"]),
            ("Namespace", src["metadata"].get("namespace", "")),
            ("URL", str(spec.get("url", ""))),
        ]  # fmt: skip
        for key, value in sorted((spec.get("ref") or {}).items()):
            rows.append((key.capitalize(), str(value)))
        rows += [
            ("Revision", source.revision(src)),
            ("Status", _last_reconciled(src)),
            ("Message", str((_ready(src) or {}).get("message", ""))),
        ]
        return rows

    rows = _run(main, kubeconfig, context)
    width = max(len(key) for key, _ in rows) + 2
    for key, value in rows:
        click.echo("---" if key == "---" else f"{key + ':':<{width}}{value}")


def _event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp") or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp") or ""
    )  # fmt: skip


@click.command("events")
@click.option("--for", "for_", default="", help="Only the events of this object, as Kind/name.")
@click.option("-A", "--all-namespaces", is_flag=True, help="In all namespaces.")
@_connection_options
def events(
    for_: str, all_namespaces: bool, kubeconfig: str | None, context: str | None,
    namespace: str,
) -> None:  # fmt: skip
    """Show the core/v1 Events of a namespace, sorted by their last timestamp."""
    kind, _, name = for_.partition("/")
    if for_ and not name:
        raise click.BadParameter("expected Kind/name", param_hint="--for")

    async def main(client: kube.Client) -> list[dict[str, Any]]:
        listed = await client.list("v1", "Event", None if all_namespaces else namespace)
        return list(listed["items"])

    items = [
        e for e in _run(main, kubeconfig, context)
        if not for_ or ((e.get("involvedObject") or {}).get("kind", "").lower() == kind.lower()
                        and (e.get("involvedObject") or {}).get("name") == name)
    ]  # fmt: skip
    if not items:
        _say("✗", "no events found")
        return
    now = datetime.now(UTC)
    header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for event in sorted(items, key=_event_time):
        involved = event.get("involvedObject") or {}
        when = _event_time(event)
        try:
            seen = now - datetime.fromisoformat(when.replace("Z", "+00:00"))
            ago = format_duration(max(0, int(seen.total_seconds())))
        except ValueError:
            ago = "<unknown>"
        row = [
            ago, str(event.get("type", "")), str(event.get("reason", "")),
            f"{involved.get('kind', '')}/{involved.get('name', '')}",
            ", ".join(str(event.get("message", "")).strip().splitlines()),
        ]  # fmt: skip
        if all_namespaces:
            row.insert(0, str((event.get("metadata") or {}).get("namespace", "")))
        rows.append(row)
    _table(rows)
