"""Kustomization (kustomize.toolkit.fluxcd.io/v1): fetch the source's artifact, build it with
kustomize, substitute variables, apply it server-side in stages, prune what left it and check
its health — Flux's kustomize-controller semantics, step by step: source, artifact, build,
apply, prune, health."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import ssl
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tidegate import envsubst, kube, kustomize, oci
from tidegate._http import Client, HTTPError
from tidegate.api import InvalidObject, Kustomization
from tidegate.apply import (
    Action,
    ApplyError,
    ChangeSet,
    CustomHealthChecks,
    HealthCheckExprError,
    Inventory,
    ObjectRef,
    ObjectsFailed,
    ObjMetadata,
    ResourceManager,
    owner_labels_for,
    wait_for,
)
from tidegate.oci._errors import UnsafeArchive
from tidegate.oci._tarball import extract
from tidegate.runtime import Request

from ._conditions import SUCCEEDED, UNKNOWN, now
from ._reconciler import NORMAL, Reconciler, Reconciliation, StepError, invalid

log = logging.getLogger("tidegate.controllers")

GROUP = "kustomize.toolkit.fluxcd.io"
KIND = "Kustomization"
FIELD_MANAGER = "kustomize-controller"

# Condition types and reasons (kustomize-controller api/v1, fluxcd/pkg/apis/meta).
READY = "Ready"
HEALTHY = "Healthy"
RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
RECONCILIATION_FAILED = "ReconciliationFailed"
ARTIFACT_FAILED = "ArtifactFailed"
BUILD_FAILED = "BuildFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
PRUNE_FAILED = "PruneFailed"
ACCESS_DENIED = "AccessDenied"
DEPENDENCY_NOT_READY = "DependencyNotReady"
PROGRESSING = "Progressing"

# Flux's defaults: `--requeue-dependency`, and the snapshots kept in `status.history`.
REQUEUE_DEPENDENCY = 30.0
HISTORY_MAX_SIZE = 5

SOURCES = {"OCIRepository": "source.toolkit.fluxcd.io/v1"}


@dataclass
class _Source:
    """The artifact of the source a Kustomization builds from."""

    url: str
    revision: str
    digest: str
    origin_revision: str


class KustomizationReconciler(Reconciler[Kustomization]):
    api_version = f"{GROUP}/v1"
    kind = KIND
    # Ready is set by the steps themselves, as kustomize-controller does.
    summarize = ()
    negative = ()

    def __init__(
        self,
        *args: Any,
        apply_field_manager: str = FIELD_MANAGER,
        no_cross_namespace_refs: bool = False,
        requeue_dependency: float = REQUEUE_DEPENDENCY,
        default_service_account: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.apply_field_manager = apply_field_manager
        self.no_cross_namespace_refs = no_cross_namespace_refs
        self.requeue_dependency = requeue_dependency
        self.default_service_account = default_service_account
        self.http = Client(ssl.create_default_context, timeout=60.0)

    async def close(self) -> None:
        await self.http.aclose()

    def parse(self, obj: Mapping[str, Any]) -> Kustomization:
        try:
            return Kustomization.from_object(obj)
        except InvalidObject as exc:
            raise invalid(str(exc)) from exc

    def interval(self, spec: Kustomization) -> float:
        return spec.spec.interval

    def sources_of(self, source: Mapping[str, Any]) -> Iterable[Request]:
        """The Kustomizations that build from `source` (an OCIRepository), to run them as
        soon as it has a new artifact."""
        meta = source.get("metadata") or {}
        kind, name, namespace = source.get("kind"), meta.get("name"), meta.get("namespace")
        for obj in self.informer.list():
            ref = (obj.get("spec") or {}).get("sourceRef") or {}
            own = (obj.get("metadata") or {}).get("namespace")
            if (
                ref.get("kind") == kind
                and ref.get("name") == name
                and (ref.get("namespace") or own) == namespace
            ):
                yield Request.of(obj)

    async def steps(self, run: Reconciliation[Kustomization]) -> None:
        self.refuse_unsupported(run)
        source = await self.reconcile_source(run)
        if run.spec.spec.depends_on:
            await self.reconcile_dependencies(run, source)
        run.status["lastAttemptedRevision"] = source.revision
        timeout = _timeout(run.spec)
        run.conditions.progressing(
            f"Fetching manifests for revision {source.revision} with a timeout of {timeout:g}s"
        )
        with tempfile.TemporaryDirectory(prefix=f"kustomization-{run.name}-") as scratch:
            root = await self.reconcile_artifact(source, Path(scratch))
            objects = await self.reconcile_build(run, root, source)
        # The digest of the built manifests, for the history (Flux: digest of the YAML stream).
        checksum = "sha256:" + hashlib.sha256(kustomize.dump_all(objects).encode()).hexdigest()
        manager = ResourceManager(
            self.client,
            field_manager=self.apply_field_manager,
            owner_labels=owner_labels_for(run.name, run.namespace),
            impersonate=self._impersonation(run.spec, run.namespace),
        )
        try:
            result = await self.reconcile_apply(run, manager, objects, source)
            # Flux: skipped objects (ssa: Ignore, reconcile: disabled, IfNotPresent on an
            # existing object) are neither in the inventory nor pruned nor health checked.
            changeset = ChangeSet([e for e in result if e.action != Action.SKIPPED])
            skipped = {e.metadata for e in result if e.action == Action.SKIPPED}
            await self.reconcile_prune(run, manager, changeset, skipped)
            await self.reconcile_health(run, changeset, source)
        except StepError as exc:
            _record_history(run, checksum, exc.reason, source)
            raise
        except kube.KubeError:
            _record_history(run, checksum, RECONCILIATION_FAILED, source)
            raise
        run.status["lastAppliedRevision"] = source.revision
        run.status["lastAppliedOriginRevision"] = source.origin_revision or None
        if not source.origin_revision:
            run.status.pop("lastAppliedOriginRevision", None)
        run.conditions.true(READY, RECONCILIATION_SUCCEEDED, f"Applied revision: {source.revision}")
        _record_history(run, checksum, RECONCILIATION_SUCCEEDED, source)

    # -- source: the referenced object and its artifact

    def refuse_unsupported(self, run: Reconciliation[Kustomization]) -> None:
        """Stop at fields this version cannot honour, rather than apply something else: SOPS
        manifests would be applied still encrypted, and a remote cluster's objects to this one."""
        spec = run.spec.spec
        if spec.decryption is not None:
            raise StepError(
                None,
                "DecryptionFailed",
                "decryption (SOPS) is not supported by this version of tidegate: nothing is "
                "applied from a Kustomization that asks for it",
                stalling=True,
            )
        if spec.kube_config is not None:
            raise StepError(
                None,
                "ReconciliationFailed",
                "spec.kubeConfig (remote clusters) is not supported by this version of tidegate: "
                "nothing is applied to the local cluster in its place",
                stalling=True,
            )

    async def reconcile_source(self, run: Reconciliation[Kustomization]) -> _Source:
        ref = run.spec.spec.source_ref
        namespace = ref.namespace or run.namespace
        api_version = SOURCES.get(ref.kind)
        if api_version is None:
            raise StepError(
                None,
                ARTIFACT_FAILED,
                f"source `{ref}` kind '{ref.kind}' is not supported by this version of tidegate",
                stalling=True,
            )
        if self.no_cross_namespace_refs and namespace != run.namespace:
            raise StepError(
                None,
                ACCESS_DENIED,
                f"can't access '{ref.kind}/{namespace}/{ref.name}', cross-namespace references "
                "have been blocked",
                stalling=True,
            )
        try:
            obj = await self.client.get(api_version, ref.kind, ref.name, namespace)
        except kube.NotFound:
            raise StepError(
                None, ARTIFACT_FAILED, f"Source '{ref.kind}/{namespace}/{ref.name}' not found"
            ) from None
        artifact = (obj.get("status") or {}).get("artifact") or {}
        if not artifact.get("url") or not artifact.get("revision"):
            raise StepError(
                None,
                ARTIFACT_FAILED,
                f"Source artifact not found, retrying in {_go_duration(self.requeue_dependency)}",
                requeue_after=self.requeue_dependency,
            )
        metadata = artifact.get("metadata") or {}
        return _Source(
            url=str(artifact["url"]),
            revision=str(artifact["revision"]),
            digest=str(artifact.get("digest") or ""),
            origin_revision=str(metadata.get(oci.REVISION) or ""),
        )

    async def notify(
        self,
        run: Reconciliation[Kustomization],
        before: Mapping[str, Any],
        error: StepError | None,
    ) -> None:
        if error is not None and error.reason == DEPENDENCY_NOT_READY:
            # Flux: an Info event, as waiting for dependencies is not a failure.
            await self.events.record(
                run.obj,
                NORMAL,
                DEPENDENCY_NOT_READY,
                "Dependencies do not meet ready condition, retrying in "
                + _go_duration(self.requeue_dependency),
            )
            return
        await super().notify(run, before, error)

    # -- dependencies: other Kustomizations that must be ready first

    async def reconcile_dependencies(
        self, run: Reconciliation[Kustomization], source: _Source
    ) -> None:
        """Flux's checkDependencies: each dependency exists, has acted on its generation, is
        Ready and, when built from the same source, has applied the current revision.
        Otherwise Ready=False (DependencyNotReady), retried after `--requeue-dependency`."""
        spec = run.spec.spec
        for ref in spec.depends_on:
            namespace = ref.namespace or run.namespace
            name = f"{namespace}/{ref.name}"
            if self.no_cross_namespace_refs and namespace != run.namespace:
                raise StepError(
                    None,
                    ACCESS_DENIED,
                    f"can't access '{KIND}/{name}', cross-namespace references have been blocked",
                    stalling=True,
                )
            try:
                dep = await self.client.get(self.api_version, KIND, ref.name, namespace)
            except kube.NotFound:
                self._not_ready(
                    f"dependency '{name}' not found: kustomizations.{GROUP} \"{ref.name}\" "
                    "not found"
                )
            status = dep.get("status") or {}
            generation = int((dep.get("metadata") or {}).get("generation") or 0)
            conditions = status.get("conditions") or []
            if not conditions or generation != int(status.get("observedGeneration") or 0):
                self._not_ready(f"dependency '{name}' is not ready")
            ready = next((c for c in conditions if c.get("type") == READY), None)
            if ready is None or ready.get("status") != "True":
                self._not_ready(f"dependency '{name}' is not ready")
            dep_ref = (dep.get("spec") or {}).get("sourceRef") or {}
            own_ref = spec.source_ref
            if (
                dep_ref.get("name") == own_ref.name
                and dep_ref.get("kind") == own_ref.kind
                and (dep_ref.get("namespace") or namespace) == (own_ref.namespace or run.namespace)
                and not _has_revision(source.revision, str(status.get("lastAppliedRevision") or ""))
            ):
                self._not_ready(f"dependency '{name}' revision is not up to date")
        log.info("All dependencies are ready, proceeding with reconciliation")

    def _not_ready(self, message: str) -> NoReturn:
        log.info(
            "Dependencies do not meet ready condition, retrying in %s",
            _go_duration(self.requeue_dependency),
        )
        raise StepError(None, DEPENDENCY_NOT_READY, message, requeue_after=self.requeue_dependency)

    def _impersonation(self, obj: Kustomization, namespace: str) -> kube.Impersonation | None:
        """Flux: spec.serviceAccountName, else `--default-service-account`, else none."""
        name = obj.spec.service_account_name or self.default_service_account
        return kube.Impersonation.service_account(namespace, name) if name else None

    async def reconcile_artifact(self, source: _Source, scratch: Path) -> Path:
        """Download the artifact, check its digest and extract it; returns the root."""
        tarball = scratch / "artifact.tar.gz"
        digest = hashlib.sha256()
        try:
            response = await self.http.request("GET", source.url)
            try:
                if response.status_code != 200:
                    raise StepError(
                        None,
                        ARTIFACT_FAILED,
                        f"failed to download artifact from {source.url}, "
                        f"status: {response.status_code} {response.reason_phrase}",
                    )
                with tarball.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                        out.write(chunk)  # a local scratch file: no wait worth a thread
            finally:
                await response.aclose()
        except HTTPError as exc:
            raise StepError(
                None, ARTIFACT_FAILED, f"failed to download artifact from {source.url}: {exc}"
            ) from exc
        algorithm, _, expected = source.digest.partition(":")
        if algorithm == "sha256" and expected != digest.hexdigest():
            raise StepError(
                None,
                ARTIFACT_FAILED,
                f"failed to verify artifact: computed digest doesn't match '{source.digest}'",
            )
        root = scratch / "source"
        root.mkdir()
        try:
            await asyncio.to_thread(_extract_file, tarball, root)
        except UnsafeArchive as exc:
            raise StepError(
                None, ARTIFACT_FAILED, f"failed to extract artifact from {source.url}: {exc}"
            ) from exc
        return root

    # -- build: kustomize, then post-build substitution

    async def reconcile_build(
        self, run: Reconciliation[Kustomization], root: Path, source: _Source
    ) -> list[dict[str, Any]]:
        spec = run.spec.spec
        raw = dict(run.obj.get("spec") or {})
        try:
            built = await asyncio.to_thread(_build, root, spec.path, raw)
        except (kustomize.KustomizeError, ValueError, OSError) as exc:
            raise StepError(None, BUILD_FAILED, str(exc)) from exc
        objects = [resource.obj for resource in built.resources]
        post = spec.post_build
        if post is None:
            return objects
        variables = envsubst.post_build_variables(
            await self.substitute_from(run), dict(post.substitute)
        )
        always = post.substitute_strategy == "Always"
        try:
            return [envsubst.substitute_object(obj, variables, always=always) for obj in objects]
        except envsubst.SubstitutionError as exc:
            raise StepError(None, BUILD_FAILED, str(exc)) from exc

    async def substitute_from(self, run: Reconciliation[Kustomization]) -> list[dict[str, str]]:
        """The data of the `substituteFrom` ConfigMaps and Secrets, in order."""
        post = run.spec.spec.post_build
        sources: list[dict[str, str]] = []
        for ref in post.substitute_from if post is not None else ():
            try:
                obj = await self.client.get("v1", ref.kind, ref.name, run.namespace)
            except kube.NotFound:
                if ref.optional:
                    continue
                raise StepError(
                    None,
                    BUILD_FAILED,
                    f"substitute from '{ref.kind}/{ref.name}' error: "
                    f'{ref.kind.lower()}s "{ref.name}" not found',
                ) from None
            data = dict(obj.get("data") or {})
            if ref.kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            sources.append(data)
        return sources

    # -- apply, prune, health

    async def reconcile_apply(
        self,
        run: Reconciliation[Kustomization],
        manager: ResourceManager,
        objects: list[dict[str, Any]],
        source: _Source,
    ) -> ChangeSet:
        run.conditions.progressing(
            f"Detecting drift for revision {source.revision} with a timeout of "
            f"{_timeout(run.spec):g}s"
        )
        old = Inventory.from_status(run.status.get("inventory"))
        try:
            changeset = await manager.apply_all_staged(
                objects, force=run.spec.spec.force, wait_timeout=_timeout(run.spec)
            )
        except ObjectsFailed as exc:
            # Keep what was applied in the inventory, so that it can be pruned later.
            old.merge(exc.changeset.inventory())
            run.status["inventory"] = old.to_status()
            await self._report(run, exc.changeset, source)
            raise StepError(None, RECONCILIATION_FAILED, str(exc)) from exc
        except ApplyError as exc:
            raise StepError(None, RECONCILIATION_FAILED, str(exc)) from exc
        log.info(
            "server-side apply completed",
            extra={"output": changeset.to_map()},
        )
        await self._report(run, changeset, source)
        return changeset

    async def _report(
        self, run: Reconciliation[Kustomization], changeset: ChangeSet, source: _Source
    ) -> None:
        changed = changeset.changed()
        if len(changed):
            await self.events.record(
                run.obj,
                NORMAL,
                PROGRESSING,
                str(changed),
                annotations={f"{GROUP}/revision": source.revision},
            )

    async def reconcile_prune(
        self,
        run: Reconciliation[Kustomization],
        manager: ResourceManager,
        changeset: ChangeSet,
        skipped: set[ObjMetadata] | None = None,
    ) -> None:
        old = Inventory.from_status(run.status.get("inventory"))
        new = changeset.inventory()
        stale = [e for e in old.diff(new) if e.metadata not in (skipped or set())]
        if run.spec.spec.prune and stale:
            try:
                pruned = await manager.delete_all(stale)
            except ObjectsFailed as exc:
                # Objects that could not be deleted stay in the inventory for the next run.
                new.merge(old.diff(new))
                run.status["inventory"] = new.to_status()
                raise StepError(None, PRUNE_FAILED, str(exc)) from exc
            log.info(
                "garbage collection completed",
                extra={"output": pruned.to_map()},
            )
            changed = pruned.changed()
            if len(changed):
                await self.events.record(run.obj, NORMAL, PROGRESSING, str(changed))
        run.status["inventory"] = new.to_status()

    async def reconcile_health(
        self, run: Reconciliation[Kustomization], changeset: ChangeSet, source: _Source
    ) -> None:
        spec = run.spec.spec
        refs: list[ObjectRef] = []
        if spec.wait:
            refs = [
                ObjectRef(
                    f"{e.metadata.group}/{e.version}" if e.metadata.group else e.version,
                    e.metadata.kind,
                    e.metadata.namespace or None,
                    e.metadata.name,
                )
                for e in changeset
            ]
        else:
            refs = [
                ObjectRef(
                    ref.api_version or "v1",
                    ref.kind,
                    ref.namespace or run.namespace or None,
                    ref.name,
                )
                for ref in spec.health_checks
            ]
        if not refs:
            run.conditions.delete(HEALTHY)
            return
        timeout = _timeout(run.spec)
        message = f"Running health checks for revision {source.revision} with a timeout of "
        run.conditions.set(HEALTHY, UNKNOWN, PROGRESSING, message + f"{timeout:g}s")
        try:
            readers = (
                [CustomHealthChecks(spec.health_check_exprs)] if spec.health_check_exprs else []
            )
        except HealthCheckExprError as exc:
            raise StepError(None, HEALTH_CHECK_FAILED, str(exc), stalling=True) from exc
        result = await wait_for(
            self.client,
            refs,
            timeout=timeout,
            readers=readers,
            impersonate=self._impersonation(run.spec, run.namespace),
        )
        if not result.ok:
            error = str(result.error)
            run.conditions.false(HEALTHY, HEALTH_CHECK_FAILED, error)
            raise StepError(None, HEALTH_CHECK_FAILED, error)
        run.conditions.true(HEALTHY, SUCCEEDED, f"Health check passed in {result.elapsed:.3g}s")

    # -- deletion

    async def finalize(self, obj: Mapping[str, Any]) -> None:
        try:
            parsed = Kustomization.from_object(obj)
        except InvalidObject:
            return
        spec = parsed.spec
        policy = spec.deletion_policy or "MirrorPrune"
        if spec.suspend or policy == "Orphan" or (policy == "MirrorPrune" and not spec.prune):
            return
        inventory = Inventory.from_status((obj.get("status") or {}).get("inventory"))
        if not len(inventory):
            return
        meta = obj["metadata"]
        manager = ResourceManager(
            self.client,
            field_manager=self.apply_field_manager,
            owner_labels=owner_labels_for(meta["name"], meta["namespace"]),
            impersonate=self._impersonation(parsed, meta["namespace"]),
        )
        try:
            await manager.delete_all(list(inventory))
            if policy == "WaitForTermination":
                await manager.wait_for_deletion(list(inventory), wait_timeout=_timeout(parsed))
        except ApplyError as exc:
            log.error("garbage collection on deletion failed: %s", exc)


def _extract_file(tarball: Path, root: Path) -> None:
    with tarball.open("rb") as archive:
        extract(archive, root)


def _build(root: Path, path: str, spec: Mapping[str, Any]) -> kustomize.Build:
    """Build `path` of the artifact extracted at `root`; the path must stay inside it."""
    root = root.resolve()
    target = (root / path.lstrip("/")).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"path '{path}' points outside the artifact")
    if not target.is_dir():
        raise ValueError(f"kustomization path not found: '{path}'")
    return kustomize.build_for_spec(target, spec, root=root)


def _timeout(obj: Kustomization) -> float:
    # Flux: spec.timeout, else spec.interval.
    spec = obj.spec
    return float(spec.timeout if spec.timeout is not None else spec.interval)


def _has_revision(current: str, other: str) -> bool:
    """Flux's Artifact.HasRevision: the same revision, comparing digests when both have one
    (`tag@sha256:…`), so that a revision with and without its tag match."""
    if not other:
        return False
    if current == other:
        return True
    return "@" in current and current.rsplit("@", 1)[1] == other.rsplit("@", 1)[-1]


def _record_history(
    run: Reconciliation[Kustomization], digest: str, status: str, source: _Source
) -> None:
    """Flux's History.Upsert: a snapshot per (digest, status), most recent first, the last
    `HISTORY_MAX_SIZE` kept."""
    metadata = {"revision": source.revision}
    if source.origin_revision:
        metadata["originRevision"] = source.origin_revision
    timestamp = now()
    duration = _go_duration(time.monotonic() - run.started)
    history = [dict(entry) for entry in run.status.get("history") or []]
    for index, entry in enumerate(history):
        if entry.get("digest") == digest and entry.get("lastReconciledStatus") == status:
            entry.update(
                lastReconciled=timestamp,
                lastReconciledDuration=duration,
                totalReconciliations=int(entry.get("totalReconciliations") or 0) + 1,
                metadata=metadata,
            )
            history.insert(0, history.pop(index))
            break
    else:
        history.insert(
            0,
            {
                "digest": digest,
                "firstReconciled": timestamp,
                "lastReconciled": timestamp,
                "lastReconciledDuration": duration,
                "lastReconciledStatus": status,
                "totalReconciliations": 1,
                "metadata": metadata,
            },
        )
    run.status["history"] = history[:HISTORY_MAX_SIZE]


def _go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String() writes it: `30s`, `2.818583s`, `1m30s`,
    `150ms`."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _fraction(nanos, size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return sign + text + _fraction(rest, 1_000_000_000) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")
