"""OCIRepository (source.toolkit.fluxcd.io/v1): resolve the artifact a spec means, pull it,
and keep it stored and served as a digest-checked tarball — Flux's source-controller
semantics, step by step: storage, source, artifact."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from tidegate import kube, oci, semver, sign
from tidegate.api import InvalidObject, OCIRepository
from tidegate.source import Artifact, Storage, StorageError

from ._conditions import SUCCEEDED
from ._reconciler import NORMAL, WARNING, Reconciler, Reconciliation, StepError, invalid

log = logging.getLogger("tidegate.controllers")

GROUP = "source.toolkit.fluxcd.io"
KIND = "OCIRepository"

# Condition types (source.toolkit.fluxcd.io/v1).
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
ARTIFACT_OUTDATED = "ArtifactOutdated"
FETCH_FAILED = "FetchFailed"
STORAGE_OPERATION_FAILED = "StorageOperationFailed"
SOURCE_VERIFIED = "SourceVerified"

# Reasons.
URL_INVALID = "URLInvalid"
VERIFICATION_ERROR = "VerificationError"
AUTHENTICATION_FAILED = "AuthenticationFailed"
READ_OPERATION_FAILED = "ReadOperationFailed"
OCI_PULL_FAILED = "OCIArtifactPullFailed"
OCI_LAYER_OPERATION_FAILED = "OCIArtifactLayerOperationFailed"
DIR_CREATION_FAILED = "DirectoryCreationFailed"
NEW_REVISION = "NewRevision"
NEW_ARTIFACT = "NewArtifact"
ARTIFACT_VERIFICATION_FAILED = "ArtifactVerificationFailed"

DEFAULT_TAG = "latest"
# The key of spec.verify.trustedRootSecretRef's Secret that holds the Sigstore trusted root.
TRUSTED_ROOT_KEY = "trusted_root.json"
EXTRACT, COPY = "extract", "copy"


class OCIRepositoryReconciler(Reconciler[OCIRepository]):
    api_version = f"{GROUP}/v1"
    kind = KIND
    summarize = (
        STORAGE_OPERATION_FAILED,
        FETCH_FAILED,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        SOURCE_VERIFIED,
        "Stalled",
        "Reconciling",
    )
    negative = (
        STORAGE_OPERATION_FAILED,
        FETCH_FAILED,
        ARTIFACT_OUTDATED,
        "Stalled",
        "Reconciling",
    )
    bipolar = (SOURCE_VERIFIED,)
    failures = (FETCH_FAILED, STORAGE_OPERATION_FAILED)

    def __init__(self, *args: Any, storage: Storage, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = storage
        self.registries = Registries()

    async def close(self) -> None:
        await self.registries.close()

    def parse(self, obj: Mapping[str, Any]) -> OCIRepository:
        try:
            return OCIRepository.from_object(obj)
        except InvalidObject as exc:
            raise invalid(str(exc)) from exc

    def interval(self, spec: OCIRepository) -> float:
        return spec.spec.interval

    async def finalize(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            await self.storage.remove_all(KIND, meta["namespace"], meta["name"])
        except StorageError as exc:
            raise StepError(None, "GarbageCollectionFailed", str(exc)) from exc

    async def steps(self, run: Reconciliation[OCIRepository]) -> None:
        await self.reconcile_storage(run)
        with tempfile.TemporaryDirectory(prefix=f"ocirepository-{run.name}-") as scratch:
            pulled = await self.reconcile_source(run, Path(scratch))
            await self.reconcile_artifact(run, pulled)

    # -- storage: garbage collection, and whether the advertised artifact is still there

    async def reconcile_storage(self, run: Reconciliation[OCIRepository]) -> None:
        status = run.status
        current = _artifact(status)
        missing = False
        if current is not None:
            try:
                await self.storage.garbage_collect(KIND, run.namespace, run.name, current)
            except StorageError as exc:
                log.warning("garbage collection failed: %s", exc)
            if not self.storage.exists(current):
                missing = True
            elif not await self.storage.verify(current):
                await self.events.record(
                    run.obj,
                    WARNING,
                    ARTIFACT_VERIFICATION_FAILED,
                    f"failed to verify integrity of artifact: digest mismatch for '{current.path}'",
                )
                missing = True
            if missing:
                status.pop("artifact", None)
                status.pop("url", None)
                current = None
        if current is None:
            message = "building artifact" + (": disappeared from storage" if missing else "")
            run.conditions.progressing(message)
            run.conditions.delete(ARTIFACT_IN_STORAGE)
            return
        # The advertised address may have changed since the artifact was stored.
        current.url = self.storage.url_for(current.path)
        status["artifact"] = current.to_status()
        status["url"] = self.storage.latest_url(KIND, run.namespace, run.name)

    # -- source: resolve the revision, pull only when something changed

    async def reconcile_source(
        self, run: Reconciliation[OCIRepository], scratch: Path
    ) -> _Pulled | None:
        spec = run.spec.spec
        conditions = run.conditions
        if conditions.is_false(SOURCE_VERIFIED):
            conditions.delete(SOURCE_VERIFIED)
        if spec.provider != "generic":
            raise StepError(
                FETCH_FAILED,
                AUTHENTICATION_FAILED,
                f"failed to get credential from {spec.provider}: cloud provider login is not "
                "supported by this version of tidegate; use secretRef or serviceAccountName",
                stalling=True,
            )
        if spec.proxy_secret_ref is not None:
            raise StepError(
                FETCH_FAILED,
                AUTHENTICATION_FAILED,
                "failed to get proxy address: proxySecretRef is not supported by this version "
                "of tidegate",
                stalling=True,
            )
        repository = _repository(spec.url, spec.insecure)
        credentials = await self.credentials(run, repository.registry)
        tls_key, tls = await self.tls(run, scratch)
        registry = self.registries.get(
            repository.registry, credentials, spec.insecure, tls_key, tls, spec.timeout
        )
        try:
            async with asyncio.timeout(spec.timeout):
                return await self._fetch(run, registry, repository, scratch)
        except TimeoutError:
            raise StepError(
                FETCH_FAILED,
                OCI_PULL_FAILED,
                f"failed to pull artifact from '{spec.url}': timeout after {spec.timeout:g}s",
            ) from None

    async def _fetch(
        self,
        run: Reconciliation[OCIRepository],
        registry: oci.Registry,
        repository: oci.Reference,
        scratch: Path,
    ) -> _Pulled | None:
        spec = run.spec.spec
        ref, revision = await self.resolve(run, registry, repository)
        current = _artifact(run.status)
        pinned = oci.Reference(
            repository.registry, repository.repository, ref.tag, revision_digest(revision)
        )
        # Verify, as Flux does, on a new revision, a new generation, or after a failure;
        # before anything is downloaded, so nothing unverified is ever stored.
        verified = run.conditions.get(SOURCE_VERIFIED)
        if spec.verify is None:
            run.conditions.delete(SOURCE_VERIFIED)
        elif (
            current is None
            or current.revision != revision
            or verified is None
            or verified.get("observedGeneration") != run.generation
            or run.conditions.is_false(SOURCE_VERIFIED)
        ):
            await self.verify(run, registry, pinned, revision)
        if current is not None and current.revision == revision and not _content_changed(run):
            run.conditions.delete(FETCH_FAILED)
            return None
        message = f"new revision '{revision}' for '{repository.name}:{ref.tag or ref.digest}'"
        if current is not None:
            run.conditions.true(ARTIFACT_OUTDATED, NEW_REVISION, message)
        run.conditions.progressing(f"building artifact: {message}")
        self.progress_soon(run)

        try:
            _, manifest = await oci.fetch_manifest(registry, pinned)
        except oci.OCIError as exc:
            raise StepError(
                FETCH_FAILED, OCI_PULL_FAILED, f"failed to pull artifact from '{spec.url}': {exc}"
            ) from exc
        annotations = {str(k): str(v) for k, v in (manifest.get("annotations") or {}).items()}
        selector = spec.layer_selector
        operation = (selector.operation if selector else None) or EXTRACT
        try:
            layer = _select_layer(manifest, pinned, selector.media_type if selector else None)
            if operation == COPY:
                target = scratch / f"{revision_digest(revision).split(':', 1)[1]}.tgz"
                out = await asyncio.to_thread(open, target, "wb")
                try:
                    await oci.download_layer(registry, pinned, layer, out)
                finally:
                    out.close()
            else:
                target = scratch / "content"
                target.mkdir()
                await oci.extract_layer(registry, pinned, layer, target)
        except (oci.ArtifactError, oci.DigestMismatch) as exc:
            raise StepError(
                FETCH_FAILED,
                OCI_LAYER_OPERATION_FAILED,
                f"failed to extract layer contents from artifact: {exc}",
            ) from exc
        except oci.OCIError as exc:
            raise StepError(
                FETCH_FAILED, OCI_PULL_FAILED, f"failed to pull artifact from '{spec.url}': {exc}"
            ) from exc
        run.conditions.delete(FETCH_FAILED)
        return _Pulled(revision, target, operation, annotations)

    async def resolve(
        self, run: Reconciliation[OCIRepository], registry: oci.Registry, repository: oci.Reference
    ) -> tuple[oci.Reference, str]:
        """The reference to pull and the revision it is now: digest > semver > tag > latest."""
        spec = run.spec.spec
        ref_spec = spec.ref
        if ref_spec is not None and ref_spec.digest:
            pinned = oci.Reference(
                repository.registry, repository.repository, None, ref_spec.digest
            )
            return pinned, ref_spec.digest
        tag = DEFAULT_TAG
        if ref_spec is not None and ref_spec.semver:
            tag = await self.semver_tag(run, registry, repository)
        elif ref_spec is not None and ref_spec.tag:
            tag = ref_spec.tag
        ref = oci.Reference(repository.registry, repository.repository, tag)
        try:
            digest = await registry.resolve(ref)
        except oci.OCIError as exc:
            raise StepError(
                FETCH_FAILED, OCI_PULL_FAILED, f"failed to determine artifact digest: {exc}"
            ) from exc
        return ref, f"{tag}@{digest}"

    async def semver_tag(
        self, run: Reconciliation[OCIRepository], registry: oci.Registry, repository: oci.Reference
    ) -> str:
        spec = run.spec.spec
        assert spec.ref is not None
        assert spec.ref.semver
        expression = spec.ref.semver
        failed = f"failed to determine the artifact tag for '{spec.url}'"
        try:
            constraint = semver.Constraint.parse(expression)
        except semver.InvalidConstraint as exc:
            raise StepError(
                FETCH_FAILED,
                READ_OPERATION_FAILED,
                f"{failed}: semver '{expression}' parse error: {exc}",
                stalling=True,
            ) from exc
        pattern: re.Pattern[str] | None = None
        if spec.ref.semver_filter:
            try:
                pattern = re.compile(spec.ref.semver_filter)
            except re.error as exc:
                raise StepError(
                    FETCH_FAILED,
                    READ_OPERATION_FAILED,
                    f"{failed}: semverFilter '{spec.ref.semver_filter}' is not a valid "
                    f"regular expression: {exc}",
                    stalling=True,
                ) from exc
        try:
            tags = await registry.tags(repository.repository)
        except oci.OCIError as exc:
            raise StepError(FETCH_FAILED, READ_OPERATION_FAILED, f"{failed}: {exc}") from exc
        if pattern is not None:
            tags = [t for t in tags if pattern.search(t)]
        found = semver.latest(tags, constraint)
        if found is None:
            raise StepError(
                FETCH_FAILED,
                READ_OPERATION_FAILED,
                f"{failed}: no match found for semver: {expression}",
            )
        return found

    # -- artifact: store what was pulled, atomically, and advertise it

    async def reconcile_artifact(
        self, run: Reconciliation[OCIRepository], pulled: _Pulled | None
    ) -> None:
        status, conditions = run.status, run.conditions
        if pulled is None:
            current = _artifact(status)
            assert current is not None
            conditions.delete(ARTIFACT_OUTDATED)
            conditions.true(
                ARTIFACT_IN_STORAGE, SUCCEEDED, f"stored artifact for digest '{current.revision}'"
            )
            return
        spec = run.spec.spec
        filename = f"{revision_digest(pulled.revision).split(':', 1)[1]}.tar.gz"
        try:
            if pulled.operation == COPY:
                artifact = await self.storage.copy(
                    KIND, run.namespace, run.name, pulled.revision, pulled.path, filename,
                    metadata=pulled.annotations or None,
                )  # fmt: skip
            else:
                artifact = await self.storage.archive(
                    KIND, run.namespace, run.name, pulled.revision, pulled.path, filename,
                    ignore=spec.ignore, metadata=pulled.annotations or None,
                )  # fmt: skip
        except StorageError as exc:
            raise StepError(STORAGE_OPERATION_FAILED, exc.reason, str(exc)) from exc
        try:
            await self.storage.garbage_collect(KIND, run.namespace, run.name, artifact)
        except StorageError as exc:
            log.warning("garbage collection failed: %s", exc)
        status["artifact"] = artifact.to_status()
        status["url"] = self.storage.latest_url(KIND, run.namespace, run.name)
        if spec.ignore is not None:
            status["observedIgnore"] = spec.ignore
        else:
            status.pop("observedIgnore", None)
        selector = (run.obj.get("spec") or {}).get("layerSelector")
        if selector is not None:
            status["observedLayerSelector"] = copy_of(selector)
        else:
            status.pop("observedLayerSelector", None)
        conditions.delete(STORAGE_OPERATION_FAILED)
        conditions.delete(ARTIFACT_OUTDATED)
        conditions.true(
            ARTIFACT_IN_STORAGE, SUCCEEDED, f"stored artifact for digest '{artifact.revision}'"
        )

    # -- signatures

    async def verify(
        self,
        run: Reconciliation[OCIRepository],
        registry: oci.Registry,
        pinned: oci.Reference,
        revision: str,
    ) -> None:
        """Check the signatures of the revision about to be pulled: SourceVerified True, or
        False and a VerificationError (the last good artifact stays)."""
        verify = run.spec.spec.verify
        assert verify is not None
        provider: str = verify.provider
        if provider == "cosign" and verify.secret_ref is None:
            provider = "cosign keyless"
        try:
            if verify.provider == "notation":
                described = await self._verify_notation(run, registry, pinned)
            else:
                described = await self._verify_cosign(run, registry, pinned)
        except (sign.VerificationError, oci.OCIError) as exc:
            message = f"failed to verify the signature using provider '{provider}': {exc}"
            run.conditions.false(SOURCE_VERIFIED, VERIFICATION_ERROR, message)
            raise StepError(None, VERIFICATION_ERROR, message) from exc
        if described.startswith(sign.NOT_VERIFIED):
            # A Notation trust policy that skips (or only audits) this repository: Flux
            # reports nothing verified, and neither is anything claimed here.
            log.info("signature of revision %s %s", revision, described)
            run.conditions.delete(SOURCE_VERIFIED)
            return
        log.info("verified signature of revision %s: %s", revision, described)
        message = f"verified signature of revision {revision}"
        run.conditions.true(SOURCE_VERIFIED, SUCCEEDED, message)

    async def _verify_cosign(
        self, run: Reconciliation[OCIRepository], registry: oci.Registry, pinned: oci.Reference
    ) -> str:
        verify = run.spec.spec.verify
        assert verify is not None
        root = None
        if verify.trusted_root_secret_ref is not None:
            name = verify.trusted_root_secret_ref.name
            data = await self._verification_secret(run, name)
            if TRUSTED_ROOT_KEY not in data:
                raise sign.VerificationError(
                    f"failed to read trusted root from secret '{run.namespace}/{name}': "
                    f"'{TRUSTED_ROOT_KEY}' not found in secret '{run.namespace}/{name}'"
                )
            root = data[TRUSTED_ROOT_KEY]
        if verify.secret_ref is not None:
            name = verify.secret_ref.name
            data = await self._verification_secret(run, name)
            keys: list[sign.PublicKey] = []
            for key_name in sorted(k for k in data if k.endswith(".pub")):
                try:
                    keys.extend(sign.load_public_keys(data[key_name]))
                except sign.KeyFileError as exc:
                    raise sign.VerificationError(
                        f"invalid public key '{key_name}' in secret '{run.namespace}/{name}': {exc}"
                    ) from None
            if not keys:
                raise sign.VerificationError(
                    f"no public keys (keys ending in .pub) found in secret '{run.namespace}/{name}'"
                )
            policy = sign.CosignPolicy(keys=keys, trusted_root=root)
        else:
            identities = [
                sign.Identity(issuer=m.issuer, subject=m.subject)
                for m in verify.match_oidc_identity or []
            ]
            if not identities:
                raise sign.VerificationError(
                    "keyless verification needs at least one spec.verify.matchOIDCIdentity "
                    "entry (or a secretRef with public keys)"
                )
            policy = sign.CosignPolicy(identities=identities, trusted_root=root)
        return (await sign.verify_cosign(registry, pinned, policy)).description

    async def _verify_notation(
        self, run: Reconciliation[OCIRepository], registry: oci.Registry, pinned: oci.Reference
    ) -> str:
        verify = run.spec.spec.verify
        assert verify is not None
        if verify.secret_ref is None:
            raise sign.VerificationError(f"verification secret cannot be empty: '{pinned}'")
        name = verify.secret_ref.name
        data = await self._verification_secret(run, name)
        policy, certificates = sign.notation_trust_material(data, f"{run.namespace}/{name}")
        return await sign.verify_notation(registry, pinned, policy, certificates)

    async def _verification_secret(
        self, run: Reconciliation[OCIRepository], name: str
    ) -> dict[str, bytes]:
        try:
            secret = await self.client.get("v1", "Secret", name, run.namespace)
        except kube.ApiError as exc:
            raise sign.VerificationError(
                f"failed to get secret '{run.namespace}/{name}': {exc.message}"
            ) from exc
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    # -- credentials and TLS from the object's Secrets and ServiceAccount

    async def credentials(
        self, run: Reconciliation[OCIRepository], registry: str
    ) -> oci.Credentials | None:
        spec = run.spec.spec
        secrets: list[str] = []
        if spec.secret_ref is not None:
            secrets.append(spec.secret_ref.name)
        if spec.service_account_name:
            try:
                account = await self.client.get(
                    "v1", "ServiceAccount", spec.service_account_name, run.namespace
                )
            except kube.ApiError as exc:
                raise StepError(
                    FETCH_FAILED,
                    AUTHENTICATION_FAILED,
                    f"failed to get credential: failed to get service account "
                    f"'{run.namespace}/{spec.service_account_name}': {exc.message}",
                ) from exc
            secrets += [s["name"] for s in account.get("imagePullSecrets") or [] if s.get("name")]
        for name in secrets:
            secret = await self._secret(run, name, "failed to get credential")
            found = _pull_secret_credentials(secret, registry, f"secret '{run.namespace}/{name}'")
            if isinstance(found, str):
                raise StepError(
                    FETCH_FAILED, AUTHENTICATION_FAILED, f"failed to get credential: {found}"
                )
            if found is not None:
                return found
        return None

    async def tls(
        self, run: Reconciliation[OCIRepository], scratch: Path
    ) -> tuple[Hashable, ssl.SSLContext | None]:
        """The TLS settings for the registry, and a key that says when two are the same."""
        spec = run.spec.spec
        if spec.cert_secret_ref is None:
            if spec.insecure:
                return "insecure", _NO_VERIFY
            return None, None
        name = spec.cert_secret_ref.name
        secret = await self._secret(run, name, "failed to generate transport")
        key = ("secret", run.namespace, name, secret["metadata"].get("resourceVersion"))
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        ca = data.get("ca.crt") or data.get("caFile")
        cert = data.get("tls.crt") or data.get("certFile")
        key_pem = data.get("tls.key") or data.get("keyFile")
        where = f"secret '{run.namespace}/{name}'"
        if not ca and not (cert and key_pem):
            raise StepError(
                FETCH_FAILED,
                AUTHENTICATION_FAILED,
                f"failed to generate transport for '{spec.url}': {where} holds none of "
                "'ca.crt', 'tls.crt' and 'tls.key'",
            )
        try:
            # Flux extends the system's CAs with the Secret's CA.
            context = ssl.create_default_context()
            if ca:
                context.load_verify_locations(cadata=ca.decode())
            if cert and key_pem:
                folder = scratch / ".tls"
                folder.mkdir(mode=0o700)
                (folder / "tls.crt").write_bytes(cert)
                (folder / "tls.key").write_bytes(key_pem)
                context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
                shutil.rmtree(folder)
        except (ssl.SSLError, ValueError) as exc:
            raise StepError(
                FETCH_FAILED,
                AUTHENTICATION_FAILED,
                f"failed to generate transport for '{spec.url}': "
                f"invalid TLS data in {where}: {exc}",
            ) from exc
        return key, context

    async def _secret(
        self, run: Reconciliation[OCIRepository], name: str, failed: str
    ) -> dict[str, Any]:
        try:
            return await self.client.get("v1", "Secret", name, run.namespace)
        except kube.ApiError as exc:
            raise StepError(
                FETCH_FAILED,
                AUTHENTICATION_FAILED,
                f"{failed}: failed to get secret '{run.namespace}/{name}': {exc.message}",
            ) from exc

    # -- events

    async def notify(
        self,
        run: Reconciliation[OCIRepository],
        before: Mapping[str, Any],
        error: StepError | None,
    ) -> None:
        if error is not None:
            await self.events.record(run.obj, WARNING, error.reason, error.message)
            return
        artifact = _artifact(run.status)
        if artifact is None:
            return
        message = f"stored artifact with revision '{artifact.revision}' from '{run.spec.spec.url}'"
        origin = artifact.metadata or {}
        if origin.get(oci.SOURCE) and origin.get(oci.REVISION):
            message += (
                f", origin source '{origin[oci.SOURCE]}', origin revision '{origin[oci.REVISION]}'"
            )
        annotations = {f"{GROUP}/revision": artifact.revision, f"{GROUP}/digest": artifact.digest}
        previous = _artifact(before)
        failed_before = any(c.get("type") in self.failures for c in before.get("conditions") or [])
        if previous is None or previous.digest != artifact.digest:
            log.info(message, extra={"revision": artifact.revision})
            await self.events.record(
                run.obj, NORMAL, NEW_ARTIFACT, message, annotations=annotations
            )
        elif failed_before:
            log.info(message, extra={"revision": artifact.revision})
            await self.events.record(run.obj, NORMAL, SUCCEEDED, message, annotations=annotations)


def _no_verify() -> ssl.SSLContext:
    # `insecure: true` without a CA: certificates are not checked (Flux allows this for
    # OCIRepository only). No CA bundle is loaded: it would not be used.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_NO_VERIFY = _no_verify()


class Registries:
    """Registry clients shared by reconciles that talk to the same registry the same way.

    Keeping them keeps connections, bearer tokens and TLS contexts warm across objects and
    runs: making a client and its TLS context costs more than a whole small pull. The least
    recently used ones are closed once there are more than `size`.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.clients: OrderedDict[Hashable, oci.Registry] = OrderedDict()
        self.retired: set[asyncio.Task[None]] = set()

    def get(
        self,
        host: str,
        credentials: oci.Credentials | None,
        insecure: bool,
        tls_key: Hashable,
        tls: ssl.SSLContext | None,
        timeout: float,
    ) -> oci.Registry:
        key = (host, credentials, insecure, tls_key, timeout)
        client = self.clients.get(key)
        if client is not None:
            self.clients.move_to_end(key)
            return client
        client = oci.Registry(
            host,
            credentials=credentials,
            insecure=insecure,
            tls=tls,
            timeout=timeout,
            # One quick retry: the controller retries failed reconciles itself, with backoff,
            # and a worker waiting on a dead registry is a worker not serving other objects.
            retries=1,
            docker_config=False,
        )
        self.clients[key] = client
        while len(self.clients) > self.size:
            _, old = self.clients.popitem(last=False)
            self._retire(old)
        return client

    def _retire(self, client: oci.Registry) -> None:
        async def later() -> None:
            await asyncio.sleep(300)  # a reconcile may still be using it
            await client.close()

        task = asyncio.get_running_loop().create_task(later())
        self.retired.add(task)
        task.add_done_callback(self.retired.discard)

    async def close(self) -> None:
        for task in list(self.retired):
            task.cancel()
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


class _Pulled:
    """What the source step fetched: a folder (extract) or a tarball (copy)."""

    def __init__(self, revision: str, path: Path, operation: str, annotations: dict[str, str]):
        self.revision = revision
        self.path = path
        self.operation = operation
        self.annotations = annotations


def revision_digest(revision: str) -> str:
    """`sha256:<hex>` from a revision `<tag>@sha256:<hex>` or `sha256:<hex>`."""
    return revision.rsplit("@", 1)[-1]


def _artifact(status: Mapping[str, Any]) -> Artifact | None:
    found = status.get("artifact")
    return Artifact.from_status(found) if isinstance(found, Mapping) else None


def _content_changed(run: Reconciliation[OCIRepository]) -> bool:
    """Whether the spec asks for different content than what is stored (Flux's
    `ociContentConfigChanged`): another `ignore` or `layerSelector`."""
    spec = run.obj.get("spec") or {}
    status = run.status
    return spec.get("ignore") != status.get("observedIgnore") or _selector(
        spec.get("layerSelector")
    ) != _selector(status.get("observedLayerSelector"))


def _selector(value: Any) -> tuple[str, str]:
    if not isinstance(value, Mapping):
        return ("", "")
    return (str(value.get("mediaType") or ""), str(value.get("operation") or ""))


def _repository(url: str, insecure: bool) -> oci.Reference:
    """The repository `spec.url` names; a tag or digest in it is refused, as Flux does."""
    if not url.startswith("oci://"):
        raise StepError(
            FETCH_FAILED,
            URL_INVALID,
            f"URL validation failed for '{url}': URL must be in format "
            "'oci://<domain>/<org>/<repo>'",
            stalling=True,
        )
    rest = url.removeprefix("oci://")
    try:
        ref = oci.Reference.parse(rest)
    except oci.InvalidReference as exc:
        raise StepError(
            FETCH_FAILED, URL_INVALID, f"URL validation failed for '{url}': {exc}", stalling=True
        ) from exc
    if ref.tag or ref.digest:
        extra = f":{ref.tag}" if ref.tag else f"@{ref.digest}"
        raise StepError(
            FETCH_FAILED,
            URL_INVALID,
            f"URL validation failed for '{url}': URL must not contain a tag; remove '{extra}'",
            stalling=True,
        )
    return ref


def _select_layer(
    manifest: Mapping[str, Any], ref: oci.Reference, media_type: str | None
) -> dict[str, Any]:
    """The layer `layerSelector.mediaType` names, or the first layer, as Flux picks it."""
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, Mapping)]
    if not layers:
        raise oci.ArtifactError(f"'{ref}': no layers found in artifact")
    return oci.select_layer(manifest, ref, media_type or str(layers[0].get("mediaType")))


def _pull_secret_credentials(
    secret: Mapping[str, Any], registry: str, where: str
) -> oci.Credentials | str | None:
    """Credentials for `registry` in a dockerconfigjson (or dockercfg) Secret; a message
    string when the Secret cannot be read as one."""
    data = secret.get("data") or {}
    raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
    if raw is None:
        return f"{where} has no '.dockerconfigjson' key"
    try:
        document = json.loads(base64.b64decode(raw))
        return oci.config_credentials(document, registry, where)
    except (ValueError, oci.OCIError) as exc:
        return f"{where} holds no valid docker config: {exc}"


def copy_of(value: Any) -> Any:
    return json.loads(json.dumps(value))
