"""`ResourceManager`: staged server-side apply with drift detection, and pruning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidegate.kube import Client, Conflict, Impersonation, KubeError, NoKindMatch, NotFound

from ._annotations import (
    CREATE_ONLY,
    KEEP_OTHER_MANAGERS,
    RECREATE,
    SKIP_APPLY,
    SKIP_PRUNE,
    any_in_metadata,
    carries_labels,
)
from ._changeset import Action, ChangeSet, ChangeSetEntry
from ._drift import has_drifted
from ._errors import (
    ApplyFailed,
    ObjectFailure,
    PruneFailed,
    WaitFailed,
    dry_run_failure,
    is_immutable_error,
)
from ._health import ObjectRef
from ._inventory import InventoryEntry, ObjMetadata, version_of
from ._normalize import normalize
from ._order import sort_key, stages
from ._takeover import cleanup_patch, takeover_managers
from ._wait import wait_until_gone, wait_until_ready

Object = dict[str, Any]


@dataclass
class _Plan:
    """The outcome of one object's dry-run: what to report, and whether to really apply it."""

    obj: Object
    action: Action = Action.UNCHANGED
    apply: bool = False
    failure: ObjectFailure | None = None


class ResourceManager:
    """Applies manifests with server-side apply and prunes objects, with the semantics of
    Flux's kustomize-controller on fluxcd/pkg/ssa.

    Every request is made as `field_manager` and, when given, as the impersonated user.
    `owner_labels` are set on every applied object, and an object is pruned only while it
    still carries them.
    """

    def __init__(
        self,
        client: Client,
        *,
        field_manager: str = "kustomize-controller",
        owner_labels: Mapping[str, str] | None = None,
        impersonate: Impersonation | None = None,
        concurrency: int = 4,
        disallowed_field_managers: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.owner_labels = dict(owner_labels or {})
        self.impersonate = impersonate
        # Dry-runs run this many at a time (kustomize-controller's --concurrent-ssa).
        self.concurrency = max(1, concurrency)
        self._takeover = takeover_managers(field_manager, disallowed_field_managers)

    # -- apply ----------------------------------------------------------------------------

    async def apply_all_staged(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        force: bool = False,
        wait_timeout: float = 60.0,
    ) -> ChangeSet:
        """Apply objects in Flux's three stages and report what changed.

        Stage one holds CustomResourceDefinitions, Namespaces and ClusterRoles and is waited
        for (CRDs Established and served, Namespaces Active); stage two the `*Class` kinds,
        also waited for; stage three everything else. Within a stage every object is first
        dry-run (all of them, failures collected), and only new or drifted objects are then
        applied. `force` recreates objects whose change hits an immutable field, as the
        `kustomize.toolkit.fluxcd.io/force: Enabled` annotation does for one object.

        Raises `ApplyFailed` naming every failing object of the first stage that fails (its
        `changeset` holds what earlier stages did), or `WaitFailed`.
        """
        desired = self._prepare_all(objects)
        changeset = ChangeSet()
        for index, stage in enumerate(stages(desired)):
            if not stage:
                continue
            try:
                result = await self._apply_stage(stage, force=force, wait_timeout=wait_timeout)
            except ApplyFailed as exc:
                changeset.extend(exc.changeset)
                raise ApplyFailed(exc.failures, changeset) from None
            changeset.extend(result)
            if index < 2:
                targets = [_target(e) for e in result if e.action is not Action.SKIPPED]
                try:
                    await self._wait_until_ready(targets, wait_timeout)
                except WaitFailed as exc:
                    raise WaitFailed(exc.failures, changeset, message=str(exc)) from None
        return changeset

    async def apply_all(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        force: bool = False,
        wait_timeout: float = 60.0,
    ) -> ChangeSet:
        """Apply objects as one stage (no ordering between definitions and their users);
        `apply_all_staged` is what a Kustomization wants."""
        desired = self._prepare_all(objects)
        return await self._apply_stage(desired, force=force, wait_timeout=wait_timeout)

    async def _wait_until_ready(self, targets: list[ObjectRef], wait_timeout: float) -> None:
        await wait_until_ready(
            self.client, targets, wait_timeout=wait_timeout, impersonate=self.impersonate
        )

    def _prepare_all(self, objects: Iterable[Mapping[str, Any]]) -> list[Object]:
        """Normalized copies carrying the owner labels; every object that is not a
        Kubernetes object (no apiVersion, kind or name) is reported at once."""
        prepared = [normalize(obj) for obj in objects]
        failures = []
        for obj in prepared:
            if not obj.get("apiVersion") or not obj.get("kind") or not _name(obj):
                subject = ObjMetadata.from_object(obj).subject
                message = f"{subject} is not a Kubernetes object: apiVersion, kind and name needed"
                failures.append(ObjectFailure(subject, message))
            elif self.owner_labels:
                meta = obj.setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), **self.owner_labels}
        if failures:
            raise ApplyFailed(failures, ChangeSet())
        return prepared

    async def _apply_stage(
        self, objects: list[Object], *, force: bool, wait_timeout: float
    ) -> ChangeSet:
        objects = sorted(objects, key=lambda obj: sort_key(ObjMetadata.from_object(obj)))
        limit = asyncio.Semaphore(self.concurrency)

        async def plan(obj: Object) -> _Plan:
            async with limit:
                return await self._plan(obj, force=force, wait_timeout=wait_timeout)

        plans = await asyncio.gather(*(plan(obj) for obj in objects))
        failures = [p.failure for p in plans if p.failure is not None]
        if failures:
            # As Flux: nothing of a stage is applied unless every dry-run passed.
            raise ApplyFailed(failures, ChangeSet())
        changeset = ChangeSet()
        for p in plans:
            if p.apply:
                try:
                    await self.client.apply(
                        p.obj,
                        field_manager=self.field_manager,
                        force=True,
                        impersonate=self.impersonate,
                    )
                except KubeError as exc:
                    subject = ObjMetadata.from_object(p.obj).subject
                    failures.append(ObjectFailure(subject, f"{subject} apply failed: {exc}"))
                    continue
            changeset.add(_entry(p.obj, p.action))
        if failures:
            raise ApplyFailed(failures, changeset)
        return changeset

    async def _plan(self, obj: Object, *, force: bool, wait_timeout: float) -> _Plan:
        """Dry-run one object and decide: skipped, unchanged, created or configured."""
        meta = ObjMetadata.from_object(obj)
        try:
            resource = await self.client.resource(str(obj["apiVersion"]), meta.kind)
        except KubeError as exc:
            return _Plan(obj, failure=dry_run_failure(meta.subject, meta.namespace, exc))
        if not resource.namespaced and meta.namespace:
            # The API server drops the namespace of cluster-scoped objects; so does the inventory.
            obj["metadata"].pop("namespace", None)
            meta = ObjMetadata.from_object(obj)
        elif resource.namespaced and not meta.namespace:
            message = f"{meta.subject} namespace not specified: {meta.kind} is namespaced"
            return _Plan(obj, failure=ObjectFailure(meta.subject, message))

        live = await self._get(obj)
        if any_in_metadata(obj, SKIP_APPLY) or any_in_metadata(live, SKIP_APPLY):
            return _Plan(obj, Action.SKIPPED)
        if live is not None and any_in_metadata(obj, CREATE_ONLY):
            return _Plan(obj, Action.SKIPPED)

        try:
            dry_run = await self._dry_run(obj)
        except KubeError as exc:
            if live is None or not await self._may_recreate(obj, live, exc, force=force):
                return _Plan(obj, failure=dry_run_failure(meta.subject, meta.namespace, exc))
            failure = await self._delete_for_recreate(obj, meta, wait_timeout)
            if failure is not None:
                return _Plan(obj, failure=failure)
            live = None
            try:
                dry_run = await self._dry_run(obj)
            except KubeError as again:
                return _Plan(obj, failure=dry_run_failure(meta.subject, meta.namespace, again))

        taken_over = False
        if live is not None and not (
            any_in_metadata(obj, KEEP_OTHER_MANAGERS) or any_in_metadata(live, KEEP_OTHER_MANAGERS)
        ):
            patch = cleanup_patch(live, self._takeover, self.field_manager)
            if patch:
                try:
                    await self.client.patch(
                        str(obj["apiVersion"]),
                        meta.kind,
                        meta.name,
                        patch,
                        meta.namespace or None,
                        patch_type="json",
                        field_manager=self.field_manager,
                        impersonate=self.impersonate,
                    )
                except KubeError as exc:
                    message = f"{meta.subject} metadata.managedFields cleanup failed: {exc}"
                    return _Plan(obj, failure=ObjectFailure(meta.subject, message))
                taken_over = True

        if not taken_over and not has_drifted(live, dry_run):
            return _Plan(obj, Action.UNCHANGED)
        created = not dry_run.get("metadata", {}).get("resourceVersion")
        return _Plan(obj, Action.CREATED if created else Action.CONFIGURED, apply=True)

    async def _get(self, obj: Object) -> Object | None:
        meta = obj["metadata"]
        try:
            return await self.client.get(
                str(obj["apiVersion"]),
                str(obj["kind"]),
                str(meta["name"]),
                meta.get("namespace"),
                impersonate=self.impersonate,
            )
        except KubeError:
            # Not found, or not readable: as in Flux, the dry-run that follows decides.
            return None

    async def _dry_run(self, obj: Object) -> Object:
        return await self.client.apply(
            obj,
            field_manager=self.field_manager,
            force=True,
            dry_run=True,
            impersonate=self.impersonate,
        )

    async def _may_recreate(
        self, obj: Object, live: Object, error: KubeError, *, force: bool
    ) -> bool:
        """Whether a failed dry-run calls for deleting and recreating the object.

        As in Flux: the error may be an immutable-field change and force is on (the option,
        or `force: Enabled` on the manifest or the live object). Flux's test also matches
        objects that are simply invalid; a dry-run create tells them apart here, so a live
        object is never deleted for a manifest that could not be created either.
        """
        wanted = force or any(any_in_metadata(o, RECREATE) for o in (obj, live))
        if not wanted or not is_immutable_error(error):
            return False
        try:
            await self.client.create(
                obj,
                dry_run=True,
                field_manager=self.field_manager,
                impersonate=self.impersonate,
            )
        except Conflict as exc:
            return exc.reason == "AlreadyExists"
        except KubeError:
            return False
        return True

    async def _delete_for_recreate(
        self, obj: Object, meta: ObjMetadata, wait_timeout: float
    ) -> ObjectFailure | None:
        api_version = str(obj["apiVersion"])
        try:
            await self.client.delete(
                api_version,
                meta.kind,
                meta.name,
                meta.namespace or None,
                propagation_policy="Background",
                impersonate=self.impersonate,
            )
        except NotFound:
            pass
        except KubeError as exc:
            message = f"{meta.subject} immutable field detected, failed to delete object: {exc}"
            return ObjectFailure(meta.subject, message)
        target = _as_target(api_version, meta)
        try:
            await wait_until_gone(
                self.client, [target], wait_timeout=wait_timeout, impersonate=self.impersonate
            )
        except WaitFailed as exc:
            message = (
                f"{meta.subject} immutable field detected, "
                f"failed to wait for object to be deleted: {exc}"
            )
            return ObjectFailure(meta.subject, message)
        return None

    # -- prune ----------------------------------------------------------------------------

    async def delete_all(
        self,
        objects: Iterable[InventoryEntry | Mapping[str, Any]],
        *,
        owned_by: Mapping[str, str] | None = None,
    ) -> ChangeSet:
        """Delete objects (inventory entries, or manifests) that still carry the owner labels.

        `owned_by` defaults to the manager's owner labels; an object without every one of
        them, or marked `prune: disabled` (or `reconcile: disabled`, `ssa: Ignore`) in the
        cluster, is `skipped`. Objects are deleted in reverse apply order, so Namespaces and
        CRDs go last; an object already gone counts as `deleted`, as in Flux. Deletion is
        background propagation and is not waited for (see `wait_for_deletion`).

        Raises `PruneFailed` naming every object that could not be read or deleted, after
        trying all of them; its `changeset` holds what was done.
        """
        labels = self.owner_labels if owned_by is None else dict(owned_by)
        if not labels:
            raise ValueError("refusing to delete objects without owner labels to check them by")
        targets = sorted(
            (_identify(obj) for obj in objects), key=lambda t: sort_key(t[1]), reverse=True
        )
        changeset = ChangeSet()
        failures: list[ObjectFailure] = []
        for api_version, meta in targets:
            action, failure = await self._delete(api_version, meta, labels)
            changeset.add(ChangeSetEntry(meta, version_of(api_version), action))
            if failure is not None:
                failures.append(failure)
        if failures:
            raise PruneFailed(failures, changeset)
        return changeset

    async def _delete(
        self, api_version: str, meta: ObjMetadata, labels: Mapping[str, str]
    ) -> tuple[Action, ObjectFailure | None]:
        namespace = meta.namespace or None
        try:
            live = await self.client.get(
                api_version, meta.kind, meta.name, namespace, impersonate=self.impersonate
            )
        except (NotFound, NoKindMatch):
            return Action.DELETED, None
        except KubeError as exc:
            failure = ObjectFailure(meta.subject, f"{meta.subject} query failed: {exc}")
            return Action.UNKNOWN, failure
        if not carries_labels(live, labels) or any_in_metadata(live, SKIP_PRUNE):
            return Action.SKIPPED, None
        try:
            await self.client.delete(
                api_version,
                meta.kind,
                meta.name,
                namespace,
                propagation_policy="Background",
                impersonate=self.impersonate,
            )
        except NotFound:
            pass
        except KubeError as exc:
            return Action.UNKNOWN, ObjectFailure(
                meta.subject, f"{meta.subject} delete failed: {exc}"
            )
        return Action.DELETED, None

    async def wait_for_deletion(
        self,
        objects: Iterable[InventoryEntry | Mapping[str, Any]],
        *,
        wait_timeout: float = 60.0,
    ) -> None:
        """Wait until none of the objects exists (finalizers done); raises `WaitFailed`
        naming those still there (Flux's `deletionPolicy: WaitForTermination`)."""
        targets = [_as_target(api_version, meta) for api_version, meta in map(_identify, objects)]
        await wait_until_gone(
            self.client, targets, wait_timeout=wait_timeout, impersonate=self.impersonate
        )


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _entry(obj: Object, action: Action) -> ChangeSetEntry:
    return ChangeSetEntry(
        ObjMetadata.from_object(obj), version_of(str(obj.get("apiVersion", ""))), action
    )


def _identify(obj: InventoryEntry | Mapping[str, Any]) -> tuple[str, ObjMetadata]:
    """The apiVersion and identity of an inventory entry or a manifest."""
    if isinstance(obj, InventoryEntry):
        return obj.api_version, obj.metadata
    return str(obj.get("apiVersion", "")), ObjMetadata.from_object(obj)


def _as_target(api_version: str, meta: ObjMetadata) -> ObjectRef:
    return ObjectRef(api_version, meta.kind, meta.namespace or None, meta.name)


def _target(entry: ChangeSetEntry) -> ObjectRef:
    meta = entry.metadata
    api_version = f"{meta.group}/{entry.version}" if meta.group else entry.version
    return _as_target(api_version, meta)
