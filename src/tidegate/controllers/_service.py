"""`tidegate controller run`: the controllers of one process, their servers, and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tidegate import kube
from tidegate.runtime import (
    Controller,
    EventRecorder,
    InformerSet,
    LeaderElection,
    Metrics,
    ProbeServer,
    changed,
)
from tidegate.source import ArtifactServer, Storage

from ._reconciler import REQUESTED_AT
from .kustomization import FIELD_MANAGER as KUSTOMIZE_FIELD_MANAGER
from .kustomization import KIND as KUSTOMIZATION
from .kustomization import KustomizationReconciler
from .ocirepository import KIND as OCIREPOSITORY
from .ocirepository import OCIRepositoryReconciler

log = logging.getLogger("tidegate.controllers")

CONTROLLERS = ("source", "kustomize")


@dataclass
class Options:
    """The flags of `tidegate controller run`; defaults as Flux's controllers have them."""

    controllers: tuple[str, ...] = CONTROLLERS
    kubeconfig: str | None = None
    context: str | None = None
    storage_path: Path = Path("/data")
    storage_addr: str = ":9090"
    storage_adv_addr: str = ""
    metrics_addr: str = ":8080"
    health_addr: str = ":9440"
    concurrent: int = 2
    qps: float = 50.0
    burst: int = 300
    artifact_retention_records: int = 2
    min_retry_delay: float = 0.75
    max_retry_delay: float = 900.0
    leader_election: bool = False
    leader_election_namespace: str = field(
        default_factory=lambda: os.environ.get("RUNTIME_NAMESPACE", "flux-system")
    )
    grace: float = 30.0
    watch_label_selector: str | None = None
    no_cross_namespace_refs: bool = False
    requeue_dependency: float = 30.0
    default_service_account: str = ""


async def run(options: Options, *, started: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or cancellation); in-flight reconciles finish first."""
    client = await kube.Client.connect(
        options.kubeconfig, options.context, qps=options.qps, burst=options.burst
    )
    metrics = Metrics()
    informers = InformerSet(client)
    servers: list[ArtifactServer | ProbeServer] = []
    controllers: list[Controller] = []
    reconcilers: list[OCIRepositoryReconciler | KustomizationReconciler] = []
    if "source" in options.controllers:
        storage_host = options.storage_adv_addr or _advertised(options.storage_addr)
        storage = Storage(
            options.storage_path, storage_host, keep=options.artifact_retention_records
        )
        servers.append(ArtifactServer(options.storage_path, options.storage_addr))
        informer = informers.informer(
            OCIRepositoryReconciler.api_version,
            OCIREPOSITORY,
            label_selector=options.watch_label_selector or None,
        )
        reconciler = OCIRepositoryReconciler(
            client,
            informer,
            EventRecorder(client, "source-controller"),
            field_manager="source-controller",
            metrics=metrics,
            storage=storage,
        )
        reconcilers.append(reconciler)
        controllers.append(
            Controller(
                "ocirepository",
                informer,
                reconciler,
                workers=options.concurrent,
                predicate=changed(annotations=(REQUESTED_AT,)),
                metrics=metrics,
                base_delay=options.min_retry_delay,
                max_delay=options.max_retry_delay,
                grace=options.grace,
            )
        )
    if "kustomize" in options.controllers:
        informer = informers.informer(
            KustomizationReconciler.api_version,
            KUSTOMIZATION,
            label_selector=options.watch_label_selector or None,
        )
        sources = informers.informer(
            OCIRepositoryReconciler.api_version,
            OCIREPOSITORY,
            label_selector=options.watch_label_selector or None,
        )
        kustomizations = KustomizationReconciler(
            client,
            informer,
            EventRecorder(client, "kustomize-controller"),
            field_manager=KUSTOMIZE_FIELD_MANAGER,
            metrics=metrics,
            apply_field_manager=KUSTOMIZE_FIELD_MANAGER,
            no_cross_namespace_refs=options.no_cross_namespace_refs,
            requeue_dependency=options.requeue_dependency,
            default_service_account=options.default_service_account,
        )
        reconcilers.append(kustomizations)
        controller = Controller(
            "kustomization",
            informer,
            kustomizations,
            workers=options.concurrent,
            predicate=changed(annotations=(REQUESTED_AT,)),
            metrics=metrics,
            base_delay=options.min_retry_delay,
            max_delay=options.max_retry_delay,
            grace=options.grace,
        )
        # A new source artifact runs the Kustomizations built from it at once.
        controller.watch(sources, kustomizations.sources_of, predicate=_new_artifact)
        controllers.append(controller)
    probes = ProbeServer(
        metrics,
        metrics_addr=options.metrics_addr,
        health_addr=options.health_addr,
        ready=lambda: informers.synced,
    )
    servers.append(probes)

    async def work() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(informers.run())
            for controller in controllers:
                group.create_task(controller.run())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for server in servers:
            await server.start()
        log.info(
            "starting controllers",
            extra={"controllers": list(options.controllers), "concurrent": options.concurrent},
        )
        if options.leader_election:
            election = LeaderElection(
                client,
                options.leader_election_namespace,
                "tidegate-" + "-".join(options.controllers) + "-controller-leader-election",
                f"{socket.gethostname()}_{uuid.uuid4()}",
            )
            main = asyncio.create_task(election.run(work))
        else:
            main = asyncio.create_task(work())
        if started is not None:
            started.set()
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({main, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if main in done:
            main.result()  # a crash of the controllers ends the process with its error
        else:
            log.info("shutting down: waiting for reconciles in flight to finish")
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        stopping.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for server in reversed(servers):
            await server.stop()
        for each in reconcilers:
            await each.close()
        await client.close()
        log.info("stopped")


def _new_artifact(old: kube.Object | None, new: kube.Object | None) -> bool:
    def revision(obj: kube.Object | None) -> object:
        return ((obj or {}).get("status") or {}).get("artifact", {}).get("revision")

    return new is not None and revision(new) is not None and revision(old) != revision(new)


def _advertised(addr: str) -> str:
    """The address to put into artifact URLs when none is given: the bound one, with the
    host name when the server listens on all interfaces."""
    host, _, port = addr.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = socket.gethostname()
    return f"{host}:{port}"
