"""`tidegate create|get|reconcile|suspend|resume source oci` against the running controller."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tidegate import kube
from tidegate.testing import Environment

from .support import OCIREPOSITORY, RunningController, tidegate
from .support import push_anonymously as push

pytestmark = [pytest.mark.cluster, pytest.mark.registry]


def test_create_export_prints_what_flux_prints(tidegate_env: Environment) -> None:
    result = tidegate(
        tidegate_env, "create", "source", "oci", "podinfo",
        "--url", "oci://ghcr.io/stefanprodan/manifests/podinfo", "--tag", "6.6.2",
        "--interval", "10m", "--export",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\n"
        "kind: OCIRepository\n"
        "metadata:\n"
        "  name: podinfo\n"
        "  namespace: flux-system\n"
        "spec:\n"
        "  interval: 10m0s\n"
        "  ref:\n"
        "    tag: 6.6.2\n"
        "  url: oci://ghcr.io/stefanprodan/manifests/podinfo\n"
    )
    missing = tidegate(tidegate_env, "create", "source", "oci", "x", "--url", "oci://r/x",
                       "--export")  # fmt: skip
    assert missing.returncode == 2
    assert "one of --tag, --tag-semver or --digest is required" in missing.stderr


async def test_create_get_reconcile_suspend_resume(
    kube: kube.Client, namespace: str, registry: str, tidegate_env: Environment,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = tmp_path / "app"
    root.mkdir()
    (root / "a.yaml").write_text("v: 1\n")
    repository = f"{namespace}/cli"
    first = await push(registry, repository, "latest", root)
    (label,) = (f"{k}={v}" for k, v in controller.labels.items())
    common = ["-n", namespace, "--timeout", "1m"]

    created = tidegate(
        tidegate_env, "create", "source", "oci", "app", "--url",
        f"oci://{registry}/{repository}", "--tag", "latest", "--insecure", "--interval", "1h",
        "--label", label, *common,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "OCIRepository source created" in created.stderr
    assert f"fetched revision: latest@{first}" in created.stderr

    listed = tidegate(tidegate_env, "get", "sources", "oci", *common)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    assert row.split()[:4] == ["app", f"latest@{first}", "False", "True"]
    assert f"stored artifact for digest 'latest@{first}'" in row

    (root / "a.yaml").write_text("v: 2\n")
    second = await push(registry, repository, "latest", root)
    reconciled = tidegate(tidegate_env, "reconcile", "source", "oci", "app", *common)
    assert reconciled.returncode == 0, reconciled.stderr
    assert f"fetched revision: latest@{second}" in reconciled.stderr

    suspended = tidegate(tidegate_env, "suspend", "source", "oci", "app", *common)
    assert suspended.returncode == 0, suspended.stderr
    obj = await kube.get(*OCIREPOSITORY, "app", namespace)
    assert obj["spec"]["suspend"] is True
    listed = tidegate(tidegate_env, "get", "sources", "oci", "-A")
    assert any(line.split()[:2] == [namespace, "app"] and line.split()[3] == "True"
               for line in listed.stdout.splitlines())  # fmt: skip
    refused = tidegate(tidegate_env, "reconcile", "source", "oci", "app", *common)
    assert refused.returncode == 1
    assert "resource is suspended" in refused.stderr

    (root / "a.yaml").write_text("v: 3\n")
    third = await push(registry, repository, "latest", root)
    resumed = tidegate(tidegate_env, "resume", "source", "oci", "app", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert f"fetched revision: latest@{third}" in resumed.stderr
    as_yaml = tidegate(tidegate_env, "get", "sources", "oci", "app", "-o", "yaml", *common)
    assert yaml.safe_load(as_yaml.stdout)["spec"]["suspend"] is False


async def test_create_that_fails_reports_the_reason(
    namespace: str, registry: str, tidegate_env: Environment, controller: RunningController
) -> None:
    (label,) = (f"{k}={v}" for k, v in controller.labels.items())
    result = tidegate(
        tidegate_env, "create", "source", "oci", "missing", "--url",
        f"oci://{registry}/{namespace}/nothing", "--tag", "v9", "--insecure",
        "--label", label, "-n", namespace, "--timeout", "1m",
    )  # fmt: skip
    assert result.returncode == 1
    assert "OCIRepository reconciliation failed: failed to determine artifact digest" in (
        result.stderr
    )
