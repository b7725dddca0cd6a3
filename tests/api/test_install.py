"""`tidegate install --crds-only [--export]` as a user runs it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tidegate import api
from tidegate.kube import Client
from tidegate.testing import Environment


def tidegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args], capture_output=True, text=True, timeout=120
    )


def test_export_prints_the_crds() -> None:
    exported = tidegate("install", "--crds-only", "--export")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == api.crds_yaml()
    assert list(yaml.safe_load_all(exported.stdout)) == api.crds()


def test_only_crds_so_far() -> None:
    refused = tidegate("install")
    assert refused.returncode == 2
    assert "only --crds-only is implemented so far" in refused.stderr


def test_bad_timeout_and_missing_kubeconfig(tmp_path: Path) -> None:
    bad = tidegate("install", "--crds-only", "--timeout", "soon")
    assert bad.returncode == 2
    assert 'invalid duration "soon"' in bad.stderr
    missing = tidegate("install", "--crds-only", "--kubeconfig", str(tmp_path / "none"))
    assert missing.returncode == 1
    assert "install failed: kubeconfig not found" in missing.stderr


@pytest.mark.cluster
async def test_exported_crds_are_accepted(kube: Client) -> None:
    exported = await asyncio.to_thread(tidegate, "install", "--crds-only", "--export")
    for crd in yaml.safe_load_all(exported.stdout):
        # A server-side dry run validates the CRD fully and changes nothing.
        checked = await kube.apply(crd, field_manager="tidegate", force=True, dry_run=True)
        assert checked["spec"]["versions"][0]["schema"] == crd["spec"]["versions"][0]["schema"]


@pytest.mark.cluster
def test_install_applies_and_waits(tidegate_env: Environment) -> None:
    installed = tidegate("install", "--crds-only", "--kubeconfig", str(tidegate_env.kubeconfig))
    assert installed.returncode == 0, installed.stderr
    # One line per CRD: flux's check mark where the terminal can show it, "ok" elsewhere.
    lines = [line.split(" ", 1) for line in installed.stderr.splitlines()]
    assert [mark in ("\u2714", "ok") for mark, _ in lines] == [True] * len(api.crds())
    assert [text for _, text in lines] == [
        f"{c['metadata']['name']} established" for c in api.crds()
    ]
