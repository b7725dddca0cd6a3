"""`tidegate dev up|status|down` as a user runs them, in separate processes."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tidegate.kube import Client

pytestmark = pytest.mark.services


def tidegate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def exports(stdout: str) -> dict[str, str]:
    pairs = [line.removeprefix("export ").split("=", 1) for line in stdout.splitlines()]
    return dict(pairs)  # type: ignore[arg-type]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def namespaces(kubeconfig: str) -> set[str]:
    async with await Client.connect(kubeconfig) as kube:
        listed = await kube.list("v1", "Namespace")
    return {item["metadata"]["name"] for item in listed["items"]}


def test_up_status_down(tmp_path: Path) -> None:
    up = tidegate("dev", "up", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        variables = exports(up.stdout)
        # Default folder .tidegate/dev under the current directory.
        assert variables["KUBECONFIG"] == str(tmp_path / ".tidegate" / "dev" / "kubeconfig")
        registry = variables["TIDEGATE_REGISTRY"]
        assert registry.startswith("127.0.0.1:")
        assert httpx.get(f"http://{registry}/v2/").status_code == 200

        names = asyncio.run(namespaces(variables["KUBECONFIG"]))
        assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names

        status = tidegate("dev", "status", "-o", "json", cwd=tmp_path)
        assert status.returncode == 0
        report = json.loads(status.stdout)
        assert report["running"] is True
        assert report["registry"] == registry
        assert {p["name"] for p in report["processes"]} == {"etcd", "kube-apiserver", "registry"}
        ports = [port for p in report["processes"] for port in p["ports"]]
        pids = sorted(p["pid"] for p in report["processes"])

        again = tidegate("dev", "up", cwd=tmp_path)
        assert again.returncode == 0
        assert "already runs" in again.stderr
        assert exports(again.stdout) == variables
        still = json.loads(tidegate("dev", "status", "-o", "json", cwd=tmp_path).stdout)
        assert sorted(p["pid"] for p in still["processes"]) == pids
    finally:
        down = tidegate("dev", "down", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert down.stderr.startswith("stopped ")
    assert not any(listening(port) for port in ports)
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or not cmdline.read_bytes()  # gone, or a zombie

    after = tidegate("dev", "status", cwd=tmp_path)
    assert after.returncode == 1
    assert "no environment" in after.stdout
    assert "no environment" in tidegate("dev", "down", cwd=tmp_path).stderr


def test_dir_option_and_version(tmp_path: Path) -> None:
    custom = tmp_path / "elsewhere"
    up = tidegate("dev", "up", "--dir", str(custom), cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert exports(up.stdout)["KUBECONFIG"] == str(custom / "kubeconfig")
        assert not (tmp_path / ".tidegate").exists()
    finally:
        assert tidegate("dev", "down", "--dir", str(custom), cwd=tmp_path).returncode == 0
    version = tidegate("--version", cwd=tmp_path)
    assert version.stdout.strip() == "tidegate 0.1.0"
