"""A real Kubernetes API server (with etcd) and an OCI registry on 127.0.0.1.

One implementation serves pytest fixtures, benchmarks and `tidegate dev up|down|status`. Every
process gets free ports, its own log file, and is recorded (pid and start time) in
`DIR/state.json`, so `stop()` ends exactly the processes `start()` began, even from another
process, and never a stranger that happens to reuse a pid.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from ._binaries import Binaries, Log, find_binaries
from ._certs import PKI, write_pki

STATE_FILE = "state.json"
CONTEXT = "tidegate-dev"
_START_ATTEMPTS = 3


class StartError(RuntimeError):
    """A component did not come up; the message ends with the tail of its log."""


class AlreadyRunning(RuntimeError):
    """The directory already holds a running environment."""


@dataclass
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    ports: list[int]
    log: str

    def alive(self) -> bool:
        """True while the recorded process (not another that reused its pid) still runs."""
        stat = _proc_stat(self.pid)
        return stat is not None and stat[1] == self.start_ticks and stat[0] != "Z"


@dataclass
class State:
    processes: list[ProcessRecord] = field(default_factory=list)
    apiserver: str = ""
    registry: str = ""
    etcd: str = ""
    kubeconfig: str = ""

    @classmethod
    def read(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        records = [ProcessRecord(**p) for p in raw.pop("processes", [])]
        return cls(processes=records, **raw)


class Environment:
    """etcd + kube-apiserver + registry, kept in `directory`.

    `cluster=False` starts the registry alone. `detach=False` (tests, benchmarks) ties the
    processes to this one: they are killed if it dies, however it dies. `detach=True`
    (`tidegate dev up`) lets them outlive the command.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        detach: bool = False,
        log: Log = lambda _msg: None,
        apiserver_args: Sequence[str] = (),
        cluster: bool = True,
    ) -> None:
        self.directory = Path(directory).absolute()
        self.detach = detach
        self.apiserver_args = list(apiserver_args)
        self.cluster = cluster
        self._log = log
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self.state = State.read(self.state_path) or State()

    # -- what it offers -------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def registry(self) -> str:
        """`127.0.0.1:PORT` of the OCI registry (plain HTTP)."""
        return self.state.registry

    def registry_blob(self, digest: str) -> Path:
        """Where the registry keeps the bytes of a blob or manifest on disk, for tests that
        corrupt what it serves."""
        hexdigest = digest.split(":", 1)[1]
        return (
            self.directory / "registry" / "data" / "docker" / "registry" / "v2" / "blobs"
            / "sha256" / hexdigest[:2] / hexdigest / "data"
        )  # fmt: skip

    @property
    def apiserver(self) -> str:
        """`https://127.0.0.1:PORT` of the API server."""
        return self.state.apiserver

    @property
    def pki(self) -> PKI:
        return _pki_paths(self.directory / "pki")

    def exports(self) -> str:
        return f"export KUBECONFIG={self.kubeconfig}\nexport TIDEGATE_REGISTRY={self.registry}\n"

    def running(self) -> list[ProcessRecord]:
        """The recorded processes that still run."""
        return [p for p in self.state.processes if p.alive()]

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision; returns that revision.

        Watches from an older resourceVersion then get 410 Gone, as they do in a cluster once
        etcd compacts (every 5 minutes by default).
        """
        current = httpx.post(f"{self.state.etcd}/v3/kv/range", json={"key": "AA=="}, timeout=10)
        current.raise_for_status()
        revision = int(current.json()["header"]["revision"])
        compacted = httpx.post(
            f"{self.state.etcd}/v3/kv/compaction",
            json={"revision": str(revision), "physical": True},
            timeout=30,
        )
        compacted.raise_for_status()
        return revision

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, binaries: Binaries | None = None) -> None:
        """Start etcd, the API server and the registry; return once all answer.

        Raises `AlreadyRunning` if this directory's environment runs; on any failure, stops
        what it had started and raises `StartError` (or `MissingPrerequisite`).
        """
        alive = self.running()
        if alive:
            pids = ", ".join(f"{p.name} {p.pid}" for p in alive)
            raise AlreadyRunning(f"an environment already runs in {self.directory} ({pids})")
        binaries = binaries or find_binaries(self._log, cluster=self.cluster)
        self._reset()
        try:
            if self.cluster:
                pki = write_pki(self.directory / "pki")
                self._start_etcd(binaries)
            self._start_registry(binaries)
            if self.cluster:
                self._start_apiserver(binaries, pki)
                self._write_kubeconfig(pki)
        except BaseException:
            # Leave nothing half-started; the original error is the one to report.
            with contextlib.suppress(RuntimeError):
                self.stop()
            raise
        self._save()

    def stop(self) -> list[str]:
        """Stop every recorded process (TERM, then KILL), wait until their ports are free.

        Returns what was stopped (`name pid`); removes data, keeps the logs.
        """
        stopped: list[str] = []
        for record in reversed(self.state.processes):
            if self._terminate(record):
                stopped.append(f"{record.name} {record.pid}")
        ports = [port for record in self.state.processes for port in record.ports]
        deadline = time.monotonic() + 10
        while any(_listening(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        busy = [port for port in ports if _listening(port)]
        self.state = State()
        self.state_path.unlink(missing_ok=True)
        for data in ("etcd", "registry/data"):
            shutil.rmtree(self.directory / data, ignore_errors=True)
        if busy:
            raise RuntimeError(f"ports still listening after stop: {busy}")
        return stopped

    def __enter__(self) -> Environment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- components -----------------------------------------------------------------------

    def _start_etcd(self, binaries: Binaries) -> None:
        def argv(ports: list[int]) -> list[str]:
            client, peer = (f"http://127.0.0.1:{p}" for p in ports)
            return [
                str(binaries.etcd),
                "--name=tidegate",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=tidegate={peer}",
                "--initial-cluster-state=new",
                "--log-level=warn",
            ]

        def ready(ports: list[int]) -> bool:
            answer = _http_get(f"http://127.0.0.1:{ports[0]}/health")
            return answer is not None and answer[0] == 200 and b'"true"' in answer[1]

        record = self._spawn("etcd", 2, argv, ready, timeout=30)
        self.state.etcd = f"http://127.0.0.1:{record.ports[0]}"

    def _start_registry(self, binaries: Binaries) -> None:
        folder = self.directory / "registry"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        config = folder / "config.yml"
        secret = secrets.token_hex(16)

        def argv(ports: list[int]) -> list[str]:
            config.write_text(yaml.safe_dump(registry_config(folder / "data", ports[0], secret)))
            return [str(binaries.registry), "serve", str(config)]

        def ready(ports: list[int]) -> bool:
            answer = _http_get(f"http://127.0.0.1:{ports[0]}/v2/")
            return answer is not None and answer[0] == 200

        record = self._spawn("registry", 1, argv, ready, timeout=30)
        self.state.registry = f"127.0.0.1:{record.ports[0]}"

    def _start_apiserver(self, binaries: Binaries, pki: PKI) -> None:
        def argv(ports: list[int]) -> list[str]:
            return [
                str(binaries.kube_apiserver),
                f"--etcd-servers={self.state.etcd}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports[0]}",
                f"--cert-dir={self.directory / 'pki'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                # No controller-manager runs to create ServiceAccounts in new namespaces, so
                # the admission plugin that requires them would reject every Pod (as envtest).
                "--disable-admission-plugins=ServiceAccount",
                "--profiling=false",
                "--v=1",
                *self.apiserver_args,
            ]

        def ready(ports: list[int]) -> bool:
            answer = _http_get(
                f"https://127.0.0.1:{ports[0]}/readyz",
                verify=str(pki.ca_cert),
                cert=(str(pki.admin_cert), str(pki.admin_key)),
            )
            return answer is not None and answer[0] == 200 and answer[1].strip() == b"ok"

        record = self._spawn("kube-apiserver", 1, argv, ready, timeout=90)
        self.state.apiserver = f"https://127.0.0.1:{record.ports[0]}"

    def _write_kubeconfig(self, pki: PKI) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {
                        "server": self.state.apiserver,
                        "certificate-authority-data": b64(pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "tidegate-admin",
                    "user": {
                        "client-certificate-data": b64(pki.admin_cert),
                        "client-key-data": b64(pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "tidegate-admin"}}
            ],
            "current-context": CONTEXT,
        }
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.state.kubeconfig = str(self.kubeconfig)

    # -- processes ------------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        port_count: int,
        argv: Callable[[list[int]], list[str]],
        ready: Callable[[list[int]], bool],
        *,
        timeout: float,
    ) -> ProcessRecord:
        """Start a process on free ports and wait until `ready`; retry on a port clash."""
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            ports = _free_ports(port_count)
            with open(log_path, "ab") as log:
                log.write(f"--- tidegate: starting {name} on ports {ports}\n".encode())
                log.flush()
                child = subprocess.Popen(
                    argv(ports),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=None if self.detach else _die_with_parent,
                )
            stat = _proc_stat(child.pid)
            record = ProcessRecord(name, child.pid, stat[1] if stat else 0, ports, str(log_path))
            self._children[child.pid] = child
            self.state.processes.append(record)
            self._save()
            deadline = time.monotonic() + timeout
            while True:
                if child.poll() is not None:
                    tail = _tail(log_path)
                    self.state.processes.remove(record)
                    if "address already in use" in tail and attempt < _START_ATTEMPTS:
                        self._log(f"{name}: port clash on {ports}, trying other ports")
                        break
                    raise StartError(
                        f"{name} exited with code {child.returncode} while starting; "
                        f"last lines of {log_path}:\n{tail}"
                    )
                if ready(ports):
                    self._log(f"{name} ready on 127.0.0.1:{ports[0]} (pid {child.pid})")
                    return record
                if time.monotonic() > deadline:
                    raise StartError(
                        f"{name} did not become ready within {timeout:.0f}s; "
                        f"last lines of {log_path}:\n{_tail(log_path)}"
                    )
                time.sleep(0.1)
        raise StartError(f"{name}: no free ports after {_START_ATTEMPTS} attempts")

    def _terminate(self, record: ProcessRecord) -> bool:
        child = self._children.pop(record.pid, None)
        if not record.alive():
            if child is not None:
                child.poll()
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
        if not _wait_gone(record, child, 15):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
            _wait_gone(record, child, 10)
        return True

    def _reset(self) -> None:
        self.state = State()
        for stale in ("etcd", "registry", "pki"):
            shutil.rmtree(self.directory / stale, ignore_errors=True)
        self.kubeconfig.unlink(missing_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _save(self) -> None:
        payload: dict[str, Any] = asdict(self.state)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.state_path)


def registry_config(
    data: Path, port: int, secret: str, auth: dict[str, Any] | None = None
) -> dict[str, Any]:
    """distribution's configuration: filesystem storage in `data`, deletes enabled, plain
    HTTP on 127.0.0.1:`port`, and the `auth:` section when given."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(data)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secret},
        "health": {"storagedriver": {"enabled": False}},
    }
    if auth:
        config["auth"] = auth
    return config


def _pki_paths(folder: Path) -> PKI:
    return PKI(
        ca_cert=folder / "ca.crt",
        ca_key=folder / "ca.key",
        serving_cert=folder / "apiserver.crt",
        serving_key=folder / "apiserver.key",
        admin_cert=folder / "admin.crt",
        admin_key=folder / "admin.key",
        sa_key=folder / "sa.key",
        sa_pub=folder / "sa.pub",
    )


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the parent dies (Linux PR_SET_PDEATHSIG).

    SIGKILL rather than SIGTERM: all three die at once, and an API server whose etcd is gone
    spends ~20 s in graceful shutdown; the environment's data is thrown away anyway.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _wait_gone(
    record: ProcessRecord, child: subprocess.Popen[bytes] | None, seconds: float
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.1)
        if not record.alive():
            return True
        time.sleep(0.05)
    return not record.alive()


def _free_ports(count: int) -> list[int]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http_get(
    url: str, *, verify: str | bool = True, cert: tuple[str, str] | None = None
) -> tuple[int, bytes] | None:
    try:
        response = httpx.get(url, verify=_ssl_context(verify, cert), timeout=2.0)
    except httpx.HTTPError:
        return None
    return response.status_code, response.content


def _ssl_context(verify: str | bool, cert: tuple[str, str] | None) -> Any:
    if not isinstance(verify, str):
        return verify
    context = ssl.create_default_context(cafile=verify)
    if cert:
        context.load_cert_chain(*cert)
    return context


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])
