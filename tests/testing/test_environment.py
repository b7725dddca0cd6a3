"""The test environment itself: start, stop, port clashes, failures, prerequisites."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tidegate.testing import Environment, MissingPrerequisite, StartError, _binaries, _environment
from tidegate.testing._binaries import find_binaries

pytestmark = pytest.mark.services


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line mentions `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_port_clash_picks_other_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = _environment._free_ports
    handed: list[list[int]] = []

    def first_one_taken(count: int) -> list[int]:
        ports = [taken, *real(count - 1)] if not handed else real(count)
        handed.append(ports)
        return ports

    monkeypatch.setattr(_environment, "_free_ports", first_one_taken)
    env = Environment(tmp_path)
    try:
        env.start()
        # etcd was offered the taken port first, failed on it, and came up elsewhere.
        assert handed[0][0] == taken
        assert taken not in env.running()[0].ports
        assert "address already in use" in (tmp_path / "logs" / "etcd.log").read_text()
        assert httpx.get(f"http://{env.registry}/v2/").status_code == 200
    finally:
        env.stop()
        squatter.close()


def test_a_process_dying_at_start_reports_its_log_and_leaves_nothing(tmp_path: Path) -> None:
    env = Environment(tmp_path, apiserver_args=["--no-such-flag=1"])
    with pytest.raises(StartError) as failed:
        env.start()
    message = str(failed.value)
    assert message.startswith("kube-apiserver exited with code")
    assert "unknown flag: --no-such-flag" in message
    assert str(tmp_path / "logs" / "kube-apiserver.log") in message
    # etcd and the registry, already up, were stopped again: no half-started environment.
    assert processes_mentioning(str(tmp_path)) == []
    assert not (tmp_path / "state.json").exists()


def test_stop_ends_exactly_the_recorded_processes(tmp_path: Path) -> None:
    env = Environment(tmp_path)
    env.start()
    records = env.running()
    ports = [port for record in records for port in record.ports]
    assert {r.name for r in records} == {"etcd", "kube-apiserver", "registry"}
    # Another handle on the same folder (as `tidegate dev down` in a new process) stops them.
    stopped = Environment(tmp_path).stop()
    assert sorted(s.split()[0] for s in stopped) == ["etcd", "kube-apiserver", "registry"]
    assert not any(listening(port) for port in ports)
    assert processes_mentioning(str(tmp_path)) == []
    assert (tmp_path / "logs" / "kube-apiserver.log").exists()  # logs stay for post-mortems


def test_a_reused_pid_is_not_killed(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        env = Environment(tmp_path)
        # A record of a process that ended, whose pid now belongs to someone else.
        env.state.processes.append(
            _environment.ProcessRecord("etcd", stranger.pid, 1, [], str(tmp_path / "x.log"))
        )
        assert env.running() == []
        env.stop()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_environment_dies_with_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from tidegate.testing import Environment
        env = Environment({str(tmp_path)!r})
        env.start()
        print(" ".join(str(p.pid) for p in env.running()), flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 3
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(tmp_path)) == []


# The inner runs start an environment of their own, even when this run reuses a `dev up`.
OWN_ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "TIDEGATE_DEV_DIR"}


def pytest_run(tmp_path: Path, test_source: str) -> list[str]:
    """The command line of a separate pytest run of one test module using the plugin."""
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_module.py").write_text(textwrap.dedent(test_source))
    plugin = ["-p", "tidegate.testing.pytest_plugin"]
    return [sys.executable, "-m", "pytest", *plugin, "-s", "-q", "--basetemp",
            str(tmp_path / "base"), str(tests)]  # fmt: skip


def test_pytest_run_that_fails_still_stops_the_environment(tmp_path: Path) -> None:
    command = pytest_run(
        tmp_path,
        """
        import pytest

        @pytest.mark.cluster
        def test_uses_cluster_then_fails(tidegate_env):
            print("ENV", tidegate_env.directory)
            assert False, "deliberate failure"
        """,
    )
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=240, env=OWN_ENVIRONMENT
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deliberate failure" in result.stdout
    env_dir = next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("ENV"))
    assert processes_mentioning(env_dir) == []


def test_interrupted_pytest_run_stops_the_environment(tmp_path: Path) -> None:
    command = pytest_run(
        tmp_path,
        """
        import time
        import pytest

        @pytest.mark.cluster
        def test_long(tidegate_env):
            print("ENV", tidegate_env.directory, flush=True)
            time.sleep(120)
        """,
    )
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=OWN_ENVIRONMENT,
        # A background job inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt; give the run the disposition a terminal's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert run.stdout is not None
        env_dir = ""
        for line in run.stdout:
            if line.startswith("ENV"):
                env_dir = line.split()[1]
                break
        assert processes_mentioning(env_dir)
        run.send_signal(signal.SIGINT)  # Ctrl-C
        rest = run.communicate(timeout=60)[0]
    finally:
        run.kill()
        run.wait()
    assert "KeyboardInterrupt" in rest
    # Stopped by the fixture's teardown (which also removes the state file).
    assert processes_mentioning(env_dir) == []
    assert not (Path(env_dir) / "state.json").exists()


def test_kubebuilder_assets_take_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = find_binaries()
    (tmp_path / "kube-apiserver").symlink_to(real.kube_apiserver)
    (tmp_path / "etcd").symlink_to(real.etcd)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    found = find_binaries()
    assert (found.kube_apiserver, found.etcd) == (tmp_path / "kube-apiserver", tmp_path / "etcd")

    (tmp_path / "etcd").unlink()
    with pytest.raises(MissingPrerequisite, match=r"lacks .*etcd"):
        find_binaries()


def test_missing_go_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_CACHE_DIR", str(tmp_path))  # nothing cached here
    monkeypatch.setenv("PATH", str(tmp_path))  # and no go on PATH
    monkeypatch.setattr(_binaries, "_executable", lambda _path: None)
    with pytest.raises(MissingPrerequisite) as missing:
        _binaries.kube_apiserver_binary(lambda _msg: None)
    assert "needs Go" in str(missing.value)
    assert "KUBEBUILDER_ASSETS" in str(missing.value)
    assert not list(tmp_path.rglob("kube-apiserver*"))


def test_missing_debian_package_without_apt_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_binaries, "_can_apt", lambda: False)
    with pytest.raises(MissingPrerequisite) as missing:
        _binaries._debian_binary("docker-registry", "no-such-registry-binary", lambda _msg: None)
    assert "install the Debian package 'docker-registry'" in str(missing.value)
    assert "apt-get install docker-registry" in str(missing.value)
