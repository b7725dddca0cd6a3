"""`tidegate create|get|reconcile|suspend|resume|diff|tree kustomization` and `trace` against
the running controller."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tidegate import kube
from tidegate.kube import NotFound
from tidegate.testing import Environment

from .support import RunningController, tidegate
from .support import push_anonymously as push

pytestmark = [pytest.mark.cluster, pytest.mark.registry]

KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"


async def test_kustomization_verbs(
    kube: kube.Client, namespace: str, registry: str, tidegate_env: Environment,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = tmp_path / "app"
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "a.yaml").write_text(configmap("a", "1"))
    (root / "deploy" / "b.yaml").write_text(configmap("b", "1"))
    repository = f"{namespace}/ks-cli"
    first = await push(registry, repository, "latest", root)
    (label,) = (f"{k}={v}" for k, v in controller.labels.items())
    common = ["-n", namespace, "--timeout", "1m"]
    source = tidegate(
        tidegate_env, "create", "source", "oci", "app", "--url",
        f"oci://{registry}/{repository}", "--tag", "latest", "--insecure", "--interval", "1h",
        "--label", label, *common,
    )  # fmt: skip
    assert source.returncode == 0, source.stderr

    created = tidegate(
        tidegate_env, "create", "kustomization", "app", "--source", "OCIRepository/app",
        "--path", "./deploy", "--prune", "--interval", "1h", "--target-namespace", namespace,
        "--label", label, *common,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "✔ Kustomization created" in created.stderr
    assert "◎ waiting for Kustomization reconciliation" in created.stderr
    assert "✔ Kustomization reconciliation completed" in created.stderr
    assert f"✔ applied revision latest@{first}" in created.stderr
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"] == {"v": "1"}

    listed = tidegate(tidegate_env, "get", "kustomizations", *common)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    assert row.split()[:4] == ["app", f"latest@{first}", "False", "True"]
    assert f"Applied revision: latest@{first}" in row
    as_json = tidegate(tidegate_env, "get", "kustomizations", "app", "-o", "json", *common)
    assert yaml.safe_load(as_json.stdout)[0]["spec"]["prune"] is True

    # diff: nothing changed, then a changed, c added and b removed locally.
    local = root / "deploy"
    same = tidegate(tidegate_env, "diff", "kustomization", "app", "--path", str(local),
                    "-n", namespace)  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout == ""
    (local / "a.yaml").write_text(configmap("a", "2"))
    (local / "c.yaml").write_text(configmap("c", "1"))
    (local / "b.yaml").unlink()
    changed = tidegate(tidegate_env, "diff", "kustomization", "app", "--path", str(local),
                       "-n", namespace)  # fmt: skip
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"► ConfigMap/{namespace}/a drifted" in changed.stdout
    assert "-  v: '1'" in changed.stdout
    assert "+  v: '2'" in changed.stdout
    assert f"► ConfigMap/{namespace}/c created" in changed.stdout
    assert f"► ConfigMap/{namespace}/b deleted" in changed.stdout
    with pytest.raises(NotFound):  # a dry-run only
        await kube.get("v1", "ConfigMap", "c", namespace)
    broken = tidegate(tidegate_env, "diff", "kustomization", "missing", "--path", str(local),
                      "-n", namespace)  # fmt: skip
    assert broken.returncode == 2

    built = tidegate(tidegate_env, "build", "kustomization", "app", "--path", str(local),
                     "-n", namespace)  # fmt: skip
    assert built.returncode == 0, built.stderr
    names = [o["metadata"]["name"] for o in yaml.safe_load_all(built.stdout)]
    assert names == ["a", "c"]

    # reconcile --with-source picks up a new artifact.
    second = await push(registry, repository, "latest", root)
    reconciled = tidegate(tidegate_env, "reconcile", "kustomization", "app", "--with-source",
                          *common)  # fmt: skip
    assert reconciled.returncode == 0, reconciled.stderr
    assert f"✔ fetched revision: latest@{second}" in reconciled.stderr
    assert f"✔ applied revision latest@{second}" in reconciled.stderr
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"] == {"v": "2"}
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "b", namespace)

    tree = tidegate(tidegate_env, "tree", "kustomization", "app", "-n", namespace)
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.splitlines() == [
        f"Kustomization/{namespace}/app",
        f"├── ConfigMap/{namespace}/a",
        f"└── ConfigMap/{namespace}/c",
    ]
    traced = tidegate(tidegate_env, "trace", "ConfigMap", "c", "-n", namespace)
    assert traced.returncode == 0, traced.stderr
    assert "Managed by Flux" in traced.stdout
    assert f"latest@{second}" in traced.stdout
    assert "OCIRepository:" in traced.stdout

    shown = tidegate(tidegate_env, "events", "--for", "Kustomization/app", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows
    assert all("Kustomization/app" in row for row in rows), shown.stdout

    suspended = tidegate(tidegate_env, "suspend", "kustomization", "app", *common)
    assert suspended.returncode == 0, suspended.stderr
    assert "✔ kustomization suspended" in suspended.stderr
    assert (await kube.get(*KUSTOMIZATION, "app", namespace))["spec"]["suspend"] is True
    listed = tidegate(tidegate_env, "get", "kustomizations", "-A")
    assert any(line.split()[:2] == [namespace, "app"] and line.split()[3] == "True"
               for line in listed.stdout.splitlines())  # fmt: skip
    refused = tidegate(tidegate_env, "reconcile", "kustomization", "app", *common)
    assert refused.returncode == 1
    assert "resource is suspended" in refused.stderr

    resumed = tidegate(tidegate_env, "resume", "kustomization", "app", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert f"✔ applied revision latest@{second}" in resumed.stderr
    assert (await kube.get(*KUSTOMIZATION, "app", namespace))["spec"]["suspend"] is False


async def test_create_that_fails_reports_the_reason(
    namespace: str, registry: str, tidegate_env: Environment, controller: RunningController,
    tmp_path: Path,
) -> None:  # fmt: skip
    root = tmp_path / "app"
    root.mkdir()
    (root / "a.yaml").write_text(configmap("a", "1"))
    repository = f"{namespace}/ks-fail"
    await push(registry, repository, "latest", root)
    (label,) = (f"{k}={v}" for k, v in controller.labels.items())
    common = ["-n", namespace, "--timeout", "1m"]
    source = tidegate(
        tidegate_env, "create", "source", "oci", "app", "--url",
        f"oci://{registry}/{repository}", "--tag", "latest", "--insecure",
        "--label", label, *common,
    )  # fmt: skip
    assert source.returncode == 0, source.stderr
    result = tidegate(
        tidegate_env, "create", "kustomization", "broken", "--source", "OCIRepository/app",
        "--path", "./nowhere", "--target-namespace", namespace, "--label", label, *common,
    )  # fmt: skip
    assert result.returncode == 1
    assert "✗ Kustomization reconciliation failed:" in result.stderr
    assert "nowhere" in result.stderr
