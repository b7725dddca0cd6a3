"""Registry authentication against real registries: htpasswd (basic) and token auth."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import AuthenticationFailed, Credentials, Reference, Registry
from tidegate.testing._registry_auth import (
    TokenServer,
    htpasswd_auth,
    start_registry,
    stop_registry,
)

pytestmark = pytest.mark.services

APP = Path(__file__).parent / "testdata" / "app" / "base"
USER, PASSWORD = "ci-bot", "s3cret-Pa55"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("basic-registry")
    process, address = start_registry(folder, htpasswd_auth(folder, USER, PASSWORD))
    yield address
    stop_registry(process)


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TokenServer]]:
    folder = tmp_path_factory.mktemp("token-registry")
    with TokenServer(folder, {USER: PASSWORD}) as tokens:
        process, address = start_registry(folder, tokens.auth_config())
        yield address, tokens
        stop_registry(process)


async def round_trip(registry: Registry, address: str, name: str, tmp_path: Path) -> None:
    target = Reference.parse(f"{address}/{name}:v1")
    pushed = await oci.push(registry, target, APP, source="s", revision="r")
    pulled = await oci.pull(registry, target, tmp_path / name.replace("/", "_"))
    assert pulled.digest == pushed.digest
    assert sorted(pulled.files) == ["deployment.yaml", "kustomization.yaml"]


async def test_basic_auth_with_creds(basic_registry: str, tmp_path: Path) -> None:
    async with Registry(
        basic_registry, insecure=True, credentials=Credentials(USER, PASSWORD)
    ) as reg:
        await round_trip(reg, basic_registry, "basic/app", tmp_path)


async def test_basic_auth_refusals(
    basic_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # an empty docker config folder
    target = Reference.parse(f"{basic_registry}/basic/denied:v1")
    async with Registry(basic_registry, insecure=True) as anonymous:
        with pytest.raises(AuthenticationFailed, match="authentication required") as caught:
            await oci.push(anonymous, target, APP)
    assert caught.value.status == 401
    async with Registry(
        basic_registry, insecure=True, credentials=Credentials(USER, "wrong")
    ) as bad:
        with pytest.raises(AuthenticationFailed, match="credentials rejected") as caught:
            await oci.push(bad, target, APP)
    assert "wrong" not in str(caught.value)


async def test_basic_auth_from_docker_config(
    basic_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    config = tmp_path / "docker"
    config.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(
        json.dumps({"auths": {f"http://{basic_registry}": {"auth": encoded}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    async with Registry(basic_registry, insecure=True) as reg:
        await round_trip(reg, basic_registry, "basic/dockerconfig", tmp_path)


async def test_basic_auth_from_credential_helper(
    basic_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-tidegate-test"
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {asked}\n'
        f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"credHelpers": {basic_registry: "tidegate-test"}, "auths": {}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    async with Registry(basic_registry, insecure=True) as reg:
        await round_trip(reg, basic_registry, "basic/helper", tmp_path)
    assert asked.read_text().splitlines() == [f"get {basic_registry}"]


async def test_token_auth(token_registry: tuple[str, TokenServer], tmp_path: Path) -> None:
    address, tokens = token_registry
    before = len(tokens.requests)
    async with Registry(address, insecure=True, credentials=Credentials(USER, PASSWORD)) as reg:
        await round_trip(reg, address, "token/app", tmp_path)
    asked = tokens.requests[before:]
    assert all(r.username == USER and r.granted for r in asked)
    assert {s for r in asked for s in r.scopes} == {
        "repository:token/app:pull",
        "repository:token/app:pull,push",
    }
    # One token per scope, reused for every request with that scope.
    assert len(asked) == 2


async def test_token_auth_refusals(
    token_registry: tuple[str, TokenServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    address, _ = token_registry
    target = Reference.parse(f"{address}/token/denied:v1")
    async with Registry(address, insecure=True) as anonymous:
        with pytest.raises(AuthenticationFailed) as caught:
            await oci.push(anonymous, target, APP)
    assert caught.value.status == 401
    assert target.name in str(caught.value)
    assert "access to repository 'token/denied' not granted" in str(caught.value)
    async with Registry(address, insecure=True, credentials=Credentials(USER, "nope")) as bad:
        with pytest.raises(AuthenticationFailed, match="invalid username or password"):
            await oci.push(bad, target, APP)
