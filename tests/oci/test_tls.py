"""A registry behind TLS: `--ca-file` to trust it, a client certificate when it asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import OCIError, Reference, Registry
from tidegate.testing._certs import PKI, PROXIED_HOST, write_pki
from tidegate.testing._registry_auth import start_registry, stop_registry

from .proxy import http_proxy, proxy_environment

pytestmark = pytest.mark.services

APP = Path(__file__).parent / "testdata" / "app" / "base"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return write_pki(tmp_path_factory.mktemp("pki"))


def _registry(folder: Path, tls: dict[str, object]) -> Iterator[str]:
    process, address = start_registry(folder, None, tls)
    yield address
    stop_registry(process)


@pytest.fixture(scope="module")
def tls_registry(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tls = {"certificate": str(pki.serving_cert), "key": str(pki.serving_key)}
    yield from _registry(tmp_path_factory.mktemp("tls"), tls)


@pytest.fixture(scope="module")
def mtls_registry(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tls = {"certificate": str(pki.serving_cert), "key": str(pki.serving_key),
           "clientcas": [str(pki.ca_cert)]}  # fmt: skip
    yield from _registry(tmp_path_factory.mktemp("mtls"), tls)


async def test_ca_file_makes_the_registry_trusted(
    tls_registry: str, pki: PKI, tmp_path: Path
) -> None:
    target = Reference.parse(f"{tls_registry}/tls/app:v1")
    async with Registry(tls_registry, docker_config=False) as untrusted:
        with pytest.raises(OCIError, match=r"TLS with .* CERTIFICATE_VERIFY_FAILED"):
            await oci.push(untrusted, target, APP)
    async with Registry(tls_registry, ca_file=pki.ca_cert, docker_config=False) as trusted:
        pushed = await oci.push(trusted, target, APP)
        pulled = await oci.pull(trusted, target, tmp_path / "out")
    assert pulled.digest == pushed.digest


async def test_client_certificate(mtls_registry: str, pki: PKI, tmp_path: Path) -> None:
    target = Reference.parse(f"{mtls_registry}/mtls/app:v1")
    async with Registry(mtls_registry, ca_file=pki.ca_cert, docker_config=False) as anonymous:
        with pytest.raises(OCIError, match=r"TLS with 127\.0\.0\.1:\d+ failed") as caught:
            await oci.push(anonymous, target, APP)
    assert "BAD_CERTIFICATE" in str(caught.value) or "certificate required" in str(caught.value)
    async with Registry(
        mtls_registry,
        ca_file=pki.ca_cert,
        client_cert=(pki.admin_cert, pki.admin_key),
        docker_config=False,
    ) as client:
        pushed = await oci.push(client, target, APP)
        assert (await oci.pull(client, target, tmp_path / "out")).digest == pushed.digest


async def test_https_registry_through_a_connect_tunnel(
    tls_registry: str, pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`registry.test` resolves nowhere: only a tunnel through `HTTPS_PROXY` reaches it, and
    its certificate is checked for that name, end to end through the proxy."""
    name = f"{PROXIED_HOST}:{tls_registry.rpartition(':')[2]}"
    target = Reference.parse(f"{name}/tunnel/app:v1")
    with http_proxy({name: tls_registry}, user="ci:secret") as proxy:
        proxy_environment(monkeypatch, HTTPS_PROXY=proxy.url.replace("://", "://ci:secret@"))
        async with Registry(name, ca_file=pki.ca_cert, docker_config=False) as client:
            pushed = await oci.push(client, target, APP)
            pulled = await oci.pull(client, target, tmp_path / "out")
    assert pulled.digest == pushed.digest
    assert (tmp_path / "out" / "kustomization.yaml").is_file()
    assert proxy.seen
    assert set(proxy.seen) == {f"CONNECT {name}"}  # nothing but tunnels: the proxy sees no URL
    assert set(proxy.credentials) == {"ci:secret"}


async def test_a_tunnel_refused_for_credentials_fails_at_once_without_naming_them(
    tls_registry: str, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{PROXIED_HOST}:{tls_registry.rpartition(':')[2]}"
    with http_proxy({name: tls_registry}, user="ci:secret") as proxy:
        proxy_environment(monkeypatch, HTTPS_PROXY=proxy.url.replace("://", "://ci:guess@"))
        async with Registry(name, ca_file=pki.ca_cert, docker_config=False) as client:
            with pytest.raises(OCIError, match=r"refused a tunnel to .*: 407") as caught:
                await client.fetch_manifest(Reference.parse(f"{name}/tunnel/app:v1"))
    assert "guess" not in str(caught.value)
    assert len(proxy.seen) == 1  # not retried: other credentials will not come by waiting
