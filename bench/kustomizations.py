"""Reconcile N Kustomizations with Flux's controllers and, after them, with tidegate's.

For each tool, in a fresh test environment (etcd, kube-apiserver, registry on 127.0.0.1) with
that tool's CRDs: push one small artifact (a ServiceAccount, a headless Service, a Deployment
scaled to 0 and a ConfigMap) to the local registry and, for each N, start the controllers,
create one OCIRepository for it in a fresh namespace and wait until it is Ready, then create N
Kustomizations of it (interval 10m, prune, path ./, `namePrefix: k<i>-` so their objects do
not collide) and measure the seconds from the first create until a watch has seen all N
Ready=True, and the controllers' peak memory (VmHWM of their processes, summed). Then delete
them, wait until they are gone (pruning their objects) and stop the controllers.

With the first N it also times a no-change reconcile of a 2-object Kustomization: once it is
Ready, set `reconcile.fluxcd.io/requestedAt` and wait (watch) until `lastHandledReconcileAt`
equals it; the median of 5.

    .venv/bin/python bench/kustomizations.py [--tools flux,tidegate] [--counts 100,500,1000]
        [--concurrent 4] [--workdir /dev/shm]

The flux side is Flux's source-controller and kustomize-controller, at the versions flux
v2.9.5 installs, built once from the Go module proxy; the tidegate side is `tidegate
controller run --controllers source,kustomize`, with its CRDs from `tidegate install
--crds-only`. The tools run one after the other, with the same --concurrent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ocirepositories as oci

from tidegate.kube import Watcher
from tidegate.testing import (
    KUSTOMIZE_CONTROLLER_VERSION,
    SOURCE_CONTROLLER_VERSION,
    Environment,
    MissingPrerequisite,
    kustomize_controller_binary,
    kustomize_controller_crds,
)

API = "kustomize.toolkit.fluxcd.io/v1"
KIND = "Kustomization"
SOURCE_API = oci.API
SOURCE_KIND = oci.KIND
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# Flux's published figures (fluxcd/flux-benchmark, Flux v2.6 on a 16-core GitHub runner).
PUBLISHED = [
    "1,000 Kustomizations: 4m16s at 175 MiB (Flux v2.6, 16-core runner)",
    "a reconcile with a change: ~170 ms",
]
# kustomize-controller's default --concurrent (main.go), which Flux's install manifests keep.
FLUX_DEFAULT_CONCURRENT = 4
RECONCILE_SAMPLES = 5


@dataclass
class Controllers:
    """The controller processes of one tool, for one round."""

    processes: list[oci.Controller] = field(default_factory=list)

    def peak_mib(self) -> float:
        return sum(c.peak_mib() for c in self.processes)

    def rss_mib(self) -> float:
        return sum(c.rss_mib() for c in self.processes)

    def peaks(self) -> str:
        """Each process's peak, when there are several (`name X MiB + ...`)."""
        if len(self.processes) < 2:
            return ""
        return " = " + " + ".join(f"{c.log.stem} {c.peak_mib():.1f}" for c in self.processes)

    def dead(self) -> oci.Controller | None:
        return next((c for c in self.processes if c.process.poll() is not None), None)

    def stop(self) -> None:
        for controller in reversed(self.processes):
            controller.stop()


# -- the tools -------------------------------------------------------------------------------


class Tool:
    name = ""

    def prepare(self) -> None:
        raise NotImplementedError

    def install_crds(self, env: Environment) -> None:
        raise NotImplementedError

    def start(self, env: Environment, work: Path, concurrent: int, tag: str) -> Controllers:
        raise NotImplementedError


class Flux(Tool):
    name = "flux"

    def prepare(self) -> None:
        self.source = oci.Flux()
        self.source.prepare()
        try:
            self.binary = kustomize_controller_binary(print)
            self.crds = kustomize_controller_crds(print)
        except MissingPrerequisite as exc:
            raise oci.BenchError(
                f"flux: kustomize-controller v{KUSTOMIZE_CONTROLLER_VERSION} could not be "
                f"built, so the flux side is skipped: {exc}"
            ) from exc

    def install_crds(self, env: Environment) -> None:
        self.source.install_crds(env)
        docs = [
            doc
            for path in sorted(self.crds.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
        asyncio.run(oci._apply_and_wait_established(env, docs))

    def start(self, env: Environment, work: Path, concurrent: int, tag: str) -> Controllers:
        controllers = Controllers([self.source.start(env, work, concurrent, tag)])
        try:
            metrics, health = oci._free_ports(2)
            argv = [
                str(self.binary),
                f"--metrics-addr=127.0.0.1:{metrics}",
                f"--health-addr=127.0.0.1:{health}",
                "--enable-leader-election=false",
                "--watch-all-namespaces",
                f"--concurrent={concurrent}",
                "--log-level=info",
                "--log-encoding=json",
            ]
            controllers.processes.append(
                start_process("kustomize-controller", argv, env, work, tag, health)
            )
        except BaseException:
            controllers.stop()
            raise
        return controllers


class Tidegate(Tool):
    name = "tidegate"

    def __init__(self) -> None:
        self.inner = _TidegateBoth()

    def prepare(self) -> None:
        self.inner.prepare()

    def install_crds(self, env: Environment) -> None:
        self.inner.install_crds(env)
        asyncio.run(oci._wait_established(env, "kustomizations.kustomize.toolkit.fluxcd.io"))

    def start(self, env: Environment, work: Path, concurrent: int, tag: str) -> Controllers:
        return Controllers([self.inner.start(env, work, concurrent, tag)])


class _TidegateBoth(oci.Tidegate):
    """ocirepositories' tidegate side, running the source and kustomize controllers."""

    def argv(self, env: Environment, storage: Path, ports: list[int], concurrent: int) -> list[str]:
        argv = super().argv(env, storage, ports, concurrent)
        argv[argv.index("--controllers") + 1] = "source,kustomize"
        return argv


TOOLS: dict[str, Callable[[], Tool]] = {"flux": Flux, "tidegate": Tidegate}


def start_process(
    name: str, argv: list[str], env: Environment, work: Path, tag: str, health: int
) -> oci.Controller:
    """Start one controller process, like ocirepositories' Tool.start, until it is healthy."""
    log = work / f"{name}-{tag}.log"
    child_env = {
        **oci.ENV,
        "KUBECONFIG": str(env.kubeconfig),
        "RUNTIME_NAMESPACE": oci.RUNTIME_NAMESPACE,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=work,
            preexec_fn=oci._die_with_parent,
        )
    controller = oci.Controller(process, f"http://127.0.0.1:{health}", log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise oci.BenchError(
                f"{name}: exited with code {process.returncode}:\n"
                f"  {' '.join(argv)}\n{oci._tail(log)}"
            )
        if oci._healthy(controller.health):
            return controller
        if time.monotonic() > deadline:
            controller.stop()
            raise oci.BenchError(f"{name}: not healthy within 60s; {log}:\n{oci._tail(log)}")
        time.sleep(0.1)


# -- objects ---------------------------------------------------------------------------------

APP = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
---
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  clusterIP: None
  selector:
    app: app
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 0
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      serviceAccountName: app
      containers:
        - name: app
          image: registry.example/app:1.0.0
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
data:
  greeting: hello
"""

SMALL = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: small
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: small
data:
  greeting: hello
"""


def push(env: Environment, work: Path, repo: str, manifests: str) -> tuple[str, str]:
    tree = work / "trees" / repo.replace("/", "-")
    tree.mkdir(parents=True)
    (tree / "manifests.yaml").write_text(manifests)
    url, tag = f"oci://{env.registry}/{repo}", "v1"
    command = [
        *oci.Tidegate.cli, "push", "artifact", f"{url}:{tag}", "--path", str(tree),
        "--source", "bench", "--revision", tag, "--insecure-registry",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=oci.ENV)
    if result.returncode != 0:
        raise oci.BenchError(f"push failed: {' '.join(command)}\n{result.stderr}")
    return url, tag


def kustomization(name: str, namespace: str, source: str, prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": "10m",
            "prune": True,
            "path": "./",
            "sourceRef": {"kind": SOURCE_KIND, "name": source},
            "targetNamespace": namespace,
            **({"namePrefix": prefix} if prefix else {}),
        },
    }


async def _source(env: Environment, namespace: str, name: str, url: str, tag: str) -> None:
    """A namespace holding one OCIRepository, once it is Ready."""
    async with await oci._client(env) as client:
        await client.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            field_manager="bench",
        )
        await client.create(oci.ocirepository(name, namespace, url, tag), field_manager="bench")
        deadline = time.monotonic() + 120
        while not oci.ready(await client.get(SOURCE_API, SOURCE_KIND, name, namespace)):
            if time.monotonic() > deadline:
                raise oci.BenchError(f"OCIRepository {namespace}/{name} not Ready within 120s")
            await asyncio.sleep(0.05)


# -- one round -------------------------------------------------------------------------------


async def measure(env: Environment, namespace: str, count: int) -> tuple[float, float]:
    """Create `count` Kustomizations of the OCIRepository `app` in `namespace`; return
    (seconds until all are Ready, seconds until all are deleted)."""
    async with await oci._client(env, qps=2000) as client:
        listed = await client.list(API, KIND, namespace)
        if listed["items"]:
            raise oci.BenchError(f"namespace {namespace} already holds {KIND}s")
        start_at = str(listed["metadata"]["resourceVersion"])
        watcher = Watcher(client, API, KIND, namespace, resource_version=start_at)
        names_ready: set[str] = set()
        all_ready = asyncio.Event()
        all_gone = asyncio.Event()
        created = False

        async def follow() -> None:
            async for event in watcher.events():
                name = event.object["metadata"]["name"]
                if event.type in ("ADDED", "MODIFIED") and oci.ready(event.object):
                    names_ready.add(name)
                    if len(names_ready) == count:
                        all_ready.set()
                if created and all_ready.is_set() and not watcher.known:
                    all_gone.set()

        follower = asyncio.create_task(follow())
        try:
            objects = [
                kustomization(f"app-{i:04d}", namespace, "app", f"k{i}-") for i in range(count)
            ]
            gate = asyncio.Semaphore(16)

            async def create(obj: dict[str, Any]) -> None:
                async with gate:
                    await client.create(obj, field_manager="bench")

            start = time.perf_counter()
            await asyncio.gather(*(create(obj) for obj in objects))
            created = True
            await oci._wait(all_ready, follower, f"all {count} Ready")
            seconds = time.perf_counter() - start

            start = time.perf_counter()
            res = await client.resource(API, KIND)
            await client.request("DELETE", res.path(namespace))
            if not watcher.known:
                all_gone.set()
            await oci._wait(all_gone, follower, f"all {count} deleted")
            return seconds, time.perf_counter() - start
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


async def reconcile_times(env: Environment, namespace: str, samples: int) -> list[float]:
    """Seconds of `samples` requested no-change reconciles of the 2-object Kustomization
    `small` (from the OCIRepository `small`) in `namespace`."""
    async with await oci._client(env, qps=2000) as client:
        await client.create(kustomization("small", namespace, "small", ""), field_manager="bench")
        deadline = time.monotonic() + 120
        while not oci.ready(await client.get(API, KIND, "small", namespace)):
            if time.monotonic() > deadline:
                raise oci.BenchError(f"Kustomization {namespace}/small not Ready within 120s")
            await asyncio.sleep(0.05)
        times = []
        for _ in range(samples):
            await asyncio.sleep(0.5)
            token = str(time.time_ns())
            start = time.perf_counter()
            patched = await client.patch(
                API,
                KIND,
                "small",
                {"metadata": {"annotations": {REQUESTED_AT: token}}},
                namespace,
                field_manager="bench",
            )
            rv = str(patched["metadata"]["resourceVersion"])
            if patched.get("status", {}).get("lastHandledReconcileAt") != token:
                watcher = Watcher(
                    client,
                    API,
                    KIND,
                    namespace,
                    field_selector="metadata.name=small",
                    resource_version=rv,
                )

                async def handled(w: Watcher = watcher, t: str = token) -> None:
                    async for event in w.events():
                        if event.object.get("status", {}).get("lastHandledReconcileAt") == t:
                            return

                await asyncio.wait_for(handled(), timeout=120)
            times.append(time.perf_counter() - start)
        return times


def run_tool(
    tool: Tool, args: argparse.Namespace, work: Path
) -> tuple[list[oci.Round], float | None]:
    folder = work / tool.name
    folder.mkdir(parents=True)
    env = Environment(folder / "env", log=lambda msg: print(f"  {msg}", file=sys.stderr))
    env.start()
    rounds = []
    reconcile: float | None = None
    try:
        tool.install_crds(env)
        asyncio.run(oci._namespace(env, oci.RUNTIME_NAMESPACE))
        app = push(env, folder, "bench/app", APP)
        small = push(env, folder, "bench/small", SMALL)
        for count in args.counts:
            controllers = tool.start(env, folder, args.concurrent, f"{count}")
            try:
                # One Kustomization first, until Ready and gone again: the clock starts once
                # the controllers reconcile (caches synced, workers running).
                warmup = f"warmup-{tool.name}-{count}"
                asyncio.run(_source(env, warmup, "app", *app))
                asyncio.run(measure(env, warmup, 1))
                if reconcile is None:
                    asyncio.run(_source(env, warmup, "small", *small))
                    times = asyncio.run(reconcile_times(env, warmup, RECONCILE_SAMPLES))
                    reconcile = statistics.median(times)
                    print(
                        f"{tool.name:>9} no-change reconcile of 2 objects: median "
                        f"{reconcile * 1000:.0f} ms of {[round(t * 1000) for t in times]}",
                        flush=True,
                    )
                namespace = f"bench-{tool.name}-{count}"
                asyncio.run(_source(env, namespace, "app", *app))
                idle = controllers.rss_mib()
                seconds, deleted = asyncio.run(measure(env, namespace, count))
                peak, parts = controllers.peak_mib(), controllers.peaks()
                dead = controllers.dead()
                if dead is not None:
                    raise oci.BenchError(f"{tool.name}: a controller died; {dead.log}")
            finally:
                controllers.stop()
            rounds.append(oci.Round(tool.name, count, seconds, peak, deleted))
            print(
                f"{tool.name:>9} N={count:<5} all Ready in {seconds:7.2f}s, "
                f"peak {peak:6.1f} MiB{parts} (RSS {idle:.1f} MiB before), "
                f"deleted in {deleted:6.2f}s",
                flush=True,
            )
    finally:
        env.stop()
    return rounds, reconcile


def report(
    rounds: list[oci.Round], counts: list[int], tools: list[str], reconciles: dict[str, float]
) -> None:
    oci.report(rounds, counts, tools)
    line = "no-change reconcile, 2 objects (median of 5):"
    for tool in tools:
        ms = reconciles.get(tool)
        line += f"  {tool} " + (f"{ms * 1000:.0f} ms" if ms is not None else "-")
    if {"flux", "tidegate"} <= reconciles.keys():
        line += f"  (flux/tg {reconciles['flux'] / reconciles['tidegate']:.2f}x)"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tools", default="flux,tidegate", help="comma-separated, run in order")
    parser.add_argument("--counts", default="100,500,1000", help="comma-separated N")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=FLUX_DEFAULT_CONCURRENT,
        help="reconciles at once, passed to every controller (default: kustomize-controller's "
        f"own default, {FLUX_DEFAULT_CONCURRENT})",
    )
    parser.add_argument(
        "--workdir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the environments, the controllers' storage and logs live (default: /dev/shm)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    args.counts = [int(n) for n in args.counts.split(",") if n]
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {list(TOOLS)}")

    print(
        f"Kustomizations (4 objects each) until all Ready=True (watch), controllers' peak "
        f"memory (VmHWM, summed); --concurrent={args.concurrent}; flux = source-controller "
        f"v{SOURCE_CONTROLLER_VERSION} + kustomize-controller v{KUSTOMIZE_CONTROLLER_VERSION}; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    rounds: list[oci.Round] = []
    reconciles: dict[str, float] = {}
    failures: list[str] = []
    scratch = tempfile.mkdtemp(prefix="tidegate-bench-ks-", dir=args.workdir)
    try:
        for name in tools:
            tool = TOOLS[name]()
            try:
                tool.prepare()
                done, reconcile = run_tool(tool, args, Path(scratch))
                rounds += done
                if reconcile is not None:
                    reconciles[name] = reconcile
            except oci.BenchError as exc:
                failures.append(str(exc))
                print(f"{name}: FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        if args.keep or failures:
            print(f"work folder kept: {scratch}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", scratch], check=False)
    report(rounds, args.counts, tools, reconciles)
    print("published (context): " + "; ".join(PUBLISHED))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
