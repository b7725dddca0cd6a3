"""`tidegate create kustomization --export` and `build kustomization --dry-run`: no cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def tidegate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidegate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
        env={"KUBECONFIG": "/nonexistent", "PATH": "/usr/bin:/bin"},
    )


def test_create_kustomization_export_prints_what_flux_prints() -> None:
    result = tidegate(
        "create", "kustomization", "podinfo", "--source", "OCIRepository/podinfo",
        "--path", "./kustomize", "--prune", "--interval", "10m",
        "--target-namespace", "default", "--export",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
        "kind: Kustomization\n"
        "metadata:\n"
        "  name: podinfo\n"
        "  namespace: flux-system\n"
        "spec:\n"
        "  interval: 10m0s\n"
        "  path: ./kustomize\n"
        "  prune: true\n"
        "  sourceRef:\n"
        "    kind: OCIRepository\n"
        "    name: podinfo\n"
        "  targetNamespace: default\n"
    )


def test_create_kustomization_export_every_option() -> None:
    result = tidegate(
        "create", "kustomization", "app", "--source", "podinfo.sources", "--depends-on",
        "infra,other/db", "--health-check", "Deployment/web.apps", "--health-check-timeout",
        "90s", "--service-account", "deployer", "--retry-interval", "2m", "--label", "a=b",
        "-n", "apps", "--export",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("---\n")
    assert yaml.safe_load(result.stdout) == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"labels": {"a": "b"}, "name": "app", "namespace": "apps"},
        "spec": {
            "dependsOn": [{"name": "infra"}, {"name": "db", "namespace": "other"}],
            "healthChecks": [{"kind": "Deployment", "name": "web", "namespace": "apps"}],
            "interval": "1m0s",
            "path": "./",
            "prune": False,
            "retryInterval": "2m0s",
            "serviceAccountName": "deployer",
            "sourceRef": {"kind": "GitRepository", "name": "podinfo", "namespace": "sources"},
            "timeout": "1m30s",
        },
    }


def test_create_kustomization_refuses_bad_input() -> None:
    bad_path = tidegate("create", "kustomization", "a", "--source", "OCIRepository/a",
                        "--path", "deploy", "--export")  # fmt: skip
    assert bad_path.returncode == 2
    assert "path must begin with ./" in bad_path.stderr
    bad_kind = tidegate("create", "kustomization", "a", "--source", "HelmRepository/a",
                        "--export")  # fmt: skip
    assert bad_kind.returncode == 2
    assert "source kind 'HelmRepository' is not supported" in bad_kind.stderr
    bad_check = tidegate("create", "kustomization", "a", "--source", "a", "--health-check",
                         "Service/a.b", "--export")  # fmt: skip
    assert bad_check.returncode == 2
    assert "invalid health check kind 'Service'" in bad_check.stderr


def test_build_dry_run_renders_as_the_controller(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
        "data:\n  greeting: ${GREETING:=hello}\n  who: ${WHO}\n"
    )
    (deploy / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
    file = tmp_path / "ks.yaml"
    file.write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata:\n  name: app\n  namespace: flux-system\n"
        "spec:\n  path: ./deploy\n  prune: true\n  targetNamespace: apps\n"
        "  sourceRef:\n    kind: OCIRepository\n    name: app\n"
        "  postBuild:\n    substitute:\n      WHO: world\n"
    )
    result = tidegate("build", "kustomization", "app", "--path", str(deploy),
                      "--kustomization-file", str(file), "--dry-run", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    owner = {
        "kustomize.toolkit.fluxcd.io/name": "app",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert list(yaml.safe_load_all(result.stdout)) == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "apps", "labels": owner},
            "data": {"greeting": "hello", "who": "world"},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": owner}},
    ]


def test_build_dry_run_needs_a_file_and_reports_build_errors(tmp_path: Path) -> None:
    missing = tidegate("build", "kustomization", "app", "--path", str(tmp_path), "--dry-run")
    assert missing.returncode == 2
    assert "dry-run mode requires a kustomization file" in missing.stderr
    (tmp_path / "kustomization.yaml").write_text("resources: [nothing.yaml]\n")
    file = tmp_path / "ks.yaml"
    file.write_text("kind: Kustomization\nmetadata:\n  name: app\nspec:\n  path: ./\n")
    broken = tidegate("build", "kustomization", "app", "--path", str(tmp_path),
                      "--kustomization-file", str(file), "--dry-run")  # fmt: skip
    assert broken.returncode == 1
    assert broken.stderr.startswith("✗ ")
