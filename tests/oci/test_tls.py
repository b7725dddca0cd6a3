"""A registry behind TLS: `--ca-file` to trust it, a client certificate when it asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import OCIError, Reference, Registry
from tidegate.testing._certs import PKI, write_pki
from tidegate.testing._registry_auth import start_registry, stop_registry

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
