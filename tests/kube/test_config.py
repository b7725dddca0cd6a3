"""Loading cluster configuration: kubeconfig files, exec credential plugins, errors."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tidegate.kube import Client, ConfigError, ConnectionFailed, _config, load_config
from tidegate.testing import Environment

REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def exec_kubeconfig(env: Environment, folder: Path, tokens: list[str]) -> tuple[Path, Path]:
    """A kubeconfig whose user is an exec plugin handing out `tokens` in turn (the last one
    repeats); returns it and the file that counts the plugin's runs."""
    calls = folder / "calls"
    plugin = folder / "plugin.py"
    plugin.write_text(
        "import json, pathlib, sys\n"
        f"calls = pathlib.Path({str(calls)!r})\n"
        "n = len(calls.read_text().splitlines()) if calls.exists() else 0\n"
        "calls.open('a').write('run\\n')\n"
        f"tokens = {tokens!r}\n"
        "credential = {'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': {'token': tokens[min(n, len(tokens) - 1)]}}\n"
        "print(json.dumps(credential))\n"
    )
    admin = yaml.safe_load(env.kubeconfig.read_text())
    admin["users"] = [
        {
            "name": "plugin-user",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": sys.executable,
                    "args": [str(plugin)],
                    "interactiveMode": "Never",
                }
            },
        }
    ]
    admin["contexts"][0]["context"]["user"] = "plugin-user"
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    return path, calls


async def service_account_token(kube: Client, namespace: str, name: str) -> str:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
    )
    answer = await kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    return str(answer["status"]["token"])


@pytest.mark.cluster
async def test_exec_plugin_credentials(
    kube: Client, namespace: str, tidegate_env: Environment, tmp_path: Path
) -> None:
    token = await service_account_token(kube, namespace, "ci")
    path, calls = exec_kubeconfig(tidegate_env, tmp_path, [token])
    async with await Client.connect(str(path)) as client:
        me = await client.create(REVIEW)
        await client.create(REVIEW)
    assert me["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:ci"
    # A credential without an expiry is reused, not fetched per request.
    assert calls.read_text().splitlines() == ["run"]


@pytest.mark.cluster
async def test_rejected_exec_credential_is_fetched_again_once(
    kube: Client, namespace: str, tidegate_env: Environment, tmp_path: Path
) -> None:
    token = await service_account_token(kube, namespace, "rotated")
    path, calls = exec_kubeconfig(tidegate_env, tmp_path, ["expired-token", token])
    async with await Client.connect(str(path)) as client:
        me = await client.create(REVIEW)
    assert me["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:rotated"
    assert len(calls.read_text().splitlines()) == 2


@pytest.mark.cluster
async def test_in_cluster_config(
    kube: Client,
    namespace: str,
    tidegate_env: Environment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the kubelet gives a Pod: a token and the CA in a folder, the address in variables.
    (tmp_path / "token").write_text(await service_account_token(kube, namespace, "controller"))
    (tmp_path / "ca.crt").write_bytes(tidegate_env.pki.ca_cert.read_bytes())
    monkeypatch.setattr(_config, "SERVICE_ACCOUNT_DIR", tmp_path)
    host, port = tidegate_env.apiserver.removeprefix("https://").split(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either

    config = await load_config()
    assert config.source == "in-cluster"
    async with Client(config) as client:
        me = await client.create(REVIEW)
    assert me["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:controller"


async def test_kubeconfig_from_environment_and_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "one", "cluster": {"server": "https://127.0.0.1:1"}},
            {"name": "two", "cluster": {"server": "https://127.0.0.1:2"}},
        ],
        "users": [{"name": "u", "user": {"token": "secret-token"}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "one", "user": "u"}},
            {"name": "two", "context": {"cluster": "two", "user": "u"}},
        ],
        "current-context": "one",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    loaded = await load_config()
    assert loaded.host == "https://127.0.0.1:1"
    assert await loaded.authorization() == "Bearer secret-token"
    assert (await load_config(context="two")).host == "https://127.0.0.1:2"
    assert "secret-token" not in loaded.source


async def test_missing_kubeconfig_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"kubeconfig not found: {tmp_path}/absent")):
        await load_config(tmp_path / "absent")


async def test_no_configuration_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no cluster configuration"):
        await load_config()


async def test_unreachable_server_is_a_connection_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        json.dumps(
            {
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    async with await Client.connect(str(path)) as client:
        with pytest.raises(ConnectionFailed, match=r"127\.0\.0\.1:9"):
            await client.get("v1", "Namespace", "default")
