"""Reconcile N OCIRepositories with Flux's source-controller and, after it, with tidegate's.

For each tool, in a fresh test environment (etcd, kube-apiserver, registry on 127.0.0.1) with
that tool's CRDs, and for each N: start the controller, create N OCIRepositories in a fresh
namespace (spread over a few small artifacts in the local registry; insecure, interval 10m),
and measure the seconds from the first create until a watch has seen all N Ready=True, and
the controller's peak memory (VmHWM of its processes). Then delete them, wait until they are
gone (the controllers hold a finalizer) and stop the controller. The tools run one after the
other, never at the same time, with the same --concurrent. Prints a table and the ratios
flux / tidegate (above 1: tidegate is faster, or leaner).

    .venv/bin/python bench/ocirepositories.py [--tools flux,tidegate] [--counts 100,500,1000]
        [--concurrent 2] [--artifacts 10] [--workdir /dev/shm]

The flux side is Flux's source-controller, built once from the Go module proxy (`tidegate dev
prepare --source-controller`); the tidegate side is `tidegate controller run --controllers
source`, with its CRDs from `tidegate install --crds-only`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import yaml

from tidegate.kube import Client, NotFound, Watcher
from tidegate.testing import (
    SOURCE_CONTROLLER_VERSION,
    Environment,
    source_controller_binary,
    source_controller_crds,
)

API = "source.toolkit.fluxcd.io/v1"
KIND = "OCIRepository"
RUNTIME_NAMESPACE = "flux-system"
# Flux's published figure (fluxcd/flux-benchmark, Flux v2.6: source-controller with 1 CPU,
# 1 GiB and --concurrent=10 on a 16-core GitHub runner, Kind with 3 nodes).
PUBLISHED = "1,000 OCIRepositories: 1m25s at 67 MiB (Flux v2.6, --concurrent=10, 16-core runner)"
# source-controller's default --concurrent (main.go), which Flux's install manifests keep.
FLUX_DEFAULT_CONCURRENT = 2
# The CLIs run as on a user's machine (see artifacts.py).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class BenchError(RuntimeError):
    pass


@dataclass
class Round:
    tool: str
    count: int
    seconds: float
    peak_mib: float
    delete_seconds: float


@dataclass
class Controller:
    """A controller process started for one round."""

    process: subprocess.Popen[bytes]
    health: str
    log: Path

    def peak_mib(self) -> float:
        """VmHWM of the process and its descendants (tidegate might fork workers)."""
        return sum(_status_kib(pid, "VmHWM") for pid in _tree(self.process.pid)) / 1024

    def rss_mib(self) -> float:
        return sum(_status_kib(pid, "VmRSS") for pid in _tree(self.process.pid)) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# -- the tools -------------------------------------------------------------------------------


class Tool:
    name = ""

    def prepare(self) -> None:
        """Find or build what the tool needs (before any environment starts)."""

    def install_crds(self, env: Environment) -> None:
        raise NotImplementedError

    def argv(self, env: Environment, storage: Path, ports: list[int], concurrent: int) -> list[str]:
        raise NotImplementedError

    def start(self, env: Environment, work: Path, concurrent: int, tag: str) -> Controller:
        storage = work / f"storage-{self.name}-{tag}"
        storage.mkdir(parents=True)
        ports = _free_ports(3)  # storage, metrics, health
        log = work / f"{self.name}-{tag}.log"
        argv = self.argv(env, storage, ports, concurrent)
        child_env = {
            **ENV,
            "KUBECONFIG": str(env.kubeconfig),
            "RUNTIME_NAMESPACE": RUNTIME_NAMESPACE,
        }
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env,
                cwd=work,
                preexec_fn=_die_with_parent,
            )
        controller = Controller(process, f"http://127.0.0.1:{ports[2]}", log)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BenchError(
                    f"{self.name}: the controller exited with code {process.returncode}:\n"
                    f"  {' '.join(argv)}\n{_tail(log)}"
                )
            if _healthy(controller.health):
                return controller
            if time.monotonic() > deadline:
                controller.stop()
                raise BenchError(f"{self.name}: not healthy within 60s; {log}:\n{_tail(log)}")
            time.sleep(0.1)


class Flux(Tool):
    name = "flux"

    def prepare(self) -> None:
        self.binary = source_controller_binary(print)
        self.crds = source_controller_crds(print)

    def install_crds(self, env: Environment) -> None:
        docs = [
            doc
            for path in sorted(self.crds.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
        asyncio.run(_apply_and_wait_established(env, docs))

    def argv(self, env: Environment, storage: Path, ports: list[int], concurrent: int) -> list[str]:
        return [
            str(self.binary),
            f"--storage-path={storage}",
            f"--storage-addr=127.0.0.1:{ports[0]}",
            f"--storage-adv-addr=127.0.0.1:{ports[0]}",
            f"--metrics-addr=127.0.0.1:{ports[1]}",
            f"--health-addr=127.0.0.1:{ports[2]}",
            "--enable-leader-election=false",
            "--watch-all-namespaces",
            f"--concurrent={concurrent}",
            "--log-level=info",
            "--log-encoding=json",
        ]


class Tidegate(Tool):
    name = "tidegate"
    cli: ClassVar[list[str]] = [sys.executable, "-m", "tidegate"]

    def prepare(self) -> None:
        for words in (["controller", "run"], ["install"]):
            result = subprocess.run(
                [*self.cli, *words, "--help"], capture_output=True, text=True, env=ENV
            )
            if result.returncode != 0:
                raise BenchError(
                    f"tidegate: `tidegate {' '.join(words)}` is not available yet "
                    f"(exit {result.returncode}); the tidegate side needs `tidegate controller "
                    "run --controllers source` and `tidegate install --crds-only`:\n"
                    + (result.stderr or result.stdout).strip()[-800:]
                )

    def install_crds(self, env: Environment) -> None:
        command = [*self.cli, "install", "--crds-only", "--kubeconfig", str(env.kubeconfig)]
        result = subprocess.run(command, capture_output=True, text=True, env=ENV)
        if result.returncode != 0:
            raise BenchError(
                f"tidegate: {' '.join(command)} failed:\n{(result.stderr or result.stdout)[-2000:]}"
            )
        asyncio.run(_wait_established(env, "ocirepositories.source.toolkit.fluxcd.io"))

    def argv(self, env: Environment, storage: Path, ports: list[int], concurrent: int) -> list[str]:
        return [
            *self.cli,
            "controller",
            "run",
            "--controllers",
            "source",
            "--kubeconfig",
            str(env.kubeconfig),
            "--storage-path",
            str(storage),
            "--storage-addr",
            f"127.0.0.1:{ports[0]}",
            "--storage-adv-addr",
            f"127.0.0.1:{ports[0]}",
            "--metrics-addr",
            f"127.0.0.1:{ports[1]}",
            "--health-addr",
            f"127.0.0.1:{ports[2]}",
            "--concurrent",
            str(concurrent),
        ]


TOOLS: dict[str, Callable[[], Tool]] = {"flux": Flux, "tidegate": Tidegate}


# -- one round -------------------------------------------------------------------------------


def ocirepository(name: str, namespace: str, url: str, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"url": url, "ref": {"tag": tag}, "interval": "10m", "insecure": True},
    }


def ready(obj: dict[str, Any]) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(
                condition.get("status") == "True"
                and condition.get("observedGeneration", generation) == generation
            )
    return False


async def measure(
    env: Environment, namespace: str, count: int, sources: list[tuple[str, str]]
) -> tuple[float, float]:
    """Create `count` OCIRepositories; return (seconds until all Ready, seconds to delete)."""
    async with await _client(env, qps=2000) as client:
        await client.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            field_manager="bench",
        )
        # Watch from the (empty) list's resourceVersion: every create after it is seen.
        listed = await client.list(API, KIND, namespace)
        if listed["items"]:
            raise BenchError(f"namespace {namespace} already holds {KIND}s")
        start_at = str(listed["metadata"]["resourceVersion"])
        watcher = Watcher(client, API, KIND, namespace, resource_version=start_at)
        names_ready: set[str] = set()
        all_ready = asyncio.Event()
        all_gone = asyncio.Event()
        created = False

        async def follow() -> None:
            async for event in watcher.events():
                name = event.object["metadata"]["name"]
                if event.type in ("ADDED", "MODIFIED") and ready(event.object):
                    names_ready.add(name)
                    if len(names_ready) == count:
                        all_ready.set()
                if created and all_ready.is_set() and not watcher.known:
                    all_gone.set()

        follower = asyncio.create_task(follow())
        try:
            objects = [
                ocirepository(f"app-{i:04d}", namespace, *sources[i % len(sources)])
                for i in range(count)
            ]
            gate = asyncio.Semaphore(16)

            async def create(obj: dict[str, Any]) -> None:
                async with gate:
                    await client.create(obj, field_manager="bench")

            start = time.perf_counter()
            await asyncio.gather(*(create(obj) for obj in objects))
            created = True
            await _wait(all_ready, follower, f"all {count} Ready")
            seconds = time.perf_counter() - start

            start = time.perf_counter()
            res = await client.resource(API, KIND)
            await client.request("DELETE", res.path(namespace))
            if not watcher.known:
                all_gone.set()
            await _wait(all_gone, follower, f"all {count} deleted")
            return seconds, time.perf_counter() - start
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower


async def _wait(event: asyncio.Event, follower: asyncio.Task[None], what: str) -> None:
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiter, follower}, timeout=1800, return_when="FIRST_COMPLETED")
    if waiter not in done:
        waiter.cancel()
        if follower in done:
            follower.result()  # raises the watch's error
        raise BenchError(f"timed out waiting for {what}")


# -- environment -----------------------------------------------------------------------------


async def _client(env: Environment, qps: float = 50.0) -> Client:
    return await Client.connect(str(env.kubeconfig), qps=qps, burst=int(qps))


async def _apply_and_wait_established(env: Environment, docs: list[dict[str, Any]]) -> None:
    async with await _client(env) as client:
        for doc in docs:
            await client.apply(doc, field_manager="bench", force=True)
    await _wait_established(env, *(doc["metadata"]["name"] for doc in docs))


async def _wait_established(env: Environment, *names: str) -> None:
    async with await _client(env) as client:
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                try:
                    crd = await client.get(
                        "apiextensions.k8s.io/v1", "CustomResourceDefinition", name
                    )
                except NotFound:
                    crd = {}
                conditions = crd.get("status", {}).get("conditions") or []
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"CRD {name} not established within 60s")
                await asyncio.sleep(0.1)


async def _namespace(env: Environment, name: str) -> None:
    async with await _client(env) as client:
        await client.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            field_manager="bench",
        )


def push_artifacts(env: Environment, work: Path, count: int) -> list[tuple[str, str]]:
    """`count` small artifacts (a few manifests each), over half as many repositories."""
    sources: list[tuple[str, str]] = []
    for i in range(count):
        repo, tag = f"bench/app-{i // 2}", f"v{i % 2 + 1}"
        tree = work / "trees" / f"{i}"
        tree.mkdir(parents=True)
        for kind in ("deployment", "service", "serviceaccount", "ingress"):
            (tree / f"{kind}.yaml").write_text(
                f"apiVersion: v1\nkind: {kind.title()}\nmetadata:\n  name: app-{i}\n"
                f"  labels:\n    app: app-{i}\n    revision: {tag}\n"
                + "".join(f"  # padding line {j}\n" for j in range(40))
            )
        url = f"oci://{env.registry}/{repo}"
        command = [
            *Tidegate.cli, "push", "artifact", f"{url}:{tag}", "--path", str(tree),
            "--source", "bench", "--revision", tag, "--insecure-registry",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=ENV)
        if result.returncode != 0:
            raise BenchError(f"push failed: {' '.join(command)}\n{result.stderr}")
        sources.append((url, tag))
    return sources


def run_tool(tool: Tool, args: argparse.Namespace, work: Path) -> list[Round]:
    folder = work / tool.name
    env = Environment(folder / "env", log=lambda msg: print(f"  {msg}", file=sys.stderr))
    env.start()
    rounds = []
    try:
        tool.install_crds(env)
        asyncio.run(_namespace(env, RUNTIME_NAMESPACE))
        sources = push_artifacts(env, folder, args.artifacts)
        for count in args.counts:
            controller = tool.start(env, folder, args.concurrent, f"{count}")
            try:
                # One object first, until Ready and gone again: the clock starts once the
                # controller reconciles (caches synced, workers running), whatever its
                # health endpoint says.
                asyncio.run(measure(env, f"warmup-{tool.name}-{count}", 1, sources))
                idle = controller.rss_mib()
                seconds, deleted = asyncio.run(
                    measure(env, f"bench-{tool.name}-{count}", count, sources)
                )
                peak = controller.peak_mib()
                if controller.process.poll() is not None:
                    raise BenchError(f"{tool.name}: the controller died; {controller.log}")
            finally:
                controller.stop()
            rounds.append(Round(tool.name, count, seconds, peak, deleted))
            print(
                f"{tool.name:>9} N={count:<5} all Ready in {seconds:7.2f}s, "
                f"peak {peak:6.1f} MiB (RSS {idle:.1f} MiB before), deleted in {deleted:6.2f}s",
                flush=True,
            )
    finally:
        env.stop()
    return rounds


def report(rounds: list[Round], counts: list[int], tools: list[str]) -> None:
    by = {(r.tool, r.count): r for r in rounds}
    header = f"{'N':>6}"
    for tool in tools:
        header += f"{tool + ' s':>14}{tool + ' MiB':>14}"
    both = {"flux", "tidegate"} <= set(tools)
    if both:
        header += f"{'time flux/tg':>14}{'MiB flux/tg':>13}"
    print(header)
    for count in counts:
        line = f"{count:>6}"
        for tool in tools:
            r = by.get((tool, count))
            line += f"{r.seconds:>14.2f}{r.peak_mib:>14.1f}" if r else f"{'-':>14}{'-':>14}"
        flux, ours = by.get(("flux", count)), by.get(("tidegate", count))
        if both and flux and ours:
            line += f"{flux.seconds / ours.seconds:>13.2f}x{flux.peak_mib / ours.peak_mib:>12.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tools", default="flux,tidegate", help="comma-separated, run in order")
    parser.add_argument("--counts", default="100,500,1000", help="comma-separated N")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=FLUX_DEFAULT_CONCURRENT,
        help="reconciles at once, passed to both controllers (default: source-controller's "
        f"own default, {FLUX_DEFAULT_CONCURRENT}; Flux's published figure used 10)",
    )
    parser.add_argument("--artifacts", type=int, default=10, help="distinct artifacts (tags)")
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
        f"OCIRepositories until all Ready=True (watch), controller peak memory (VmHWM); "
        f"--concurrent={args.concurrent}; {args.artifacts} artifacts; "
        f"flux = source-controller v{SOURCE_CONTROLLER_VERSION}; {os.cpu_count()} CPUs",
        flush=True,
    )
    rounds: list[Round] = []
    failures: list[str] = []
    scratch = tempfile.mkdtemp(prefix="tidegate-bench-oci-", dir=args.workdir)
    try:
        for name in tools:
            tool = TOOLS[name]()
            try:
                tool.prepare()
                rounds += run_tool(tool, args, Path(scratch))
            except BenchError as exc:
                failures.append(str(exc))
                print(f"{name}: FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        if args.keep or failures:
            print(f"work folder kept: {scratch}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", scratch], check=False)
    report(rounds, args.counts, tools)
    print(f"published (context): {PUBLISHED}")
    if failures:
        sys.exit(1)


# -- helpers ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _healthy(base: str) -> bool:
    for path in ("/readyz", "/healthz"):
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
    return False


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for parent in found:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    main()
