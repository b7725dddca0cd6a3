"""OCIRepository end to end: the controller process, the real apiserver and registry."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tidegate import kube, oci
from tidegate.oci import Reference, Registry
from tidegate.testing import Environment
from tidegate.testing._registry_auth import htpasswd_auth, start_registry, stop_registry

from .support import (
    OCIREPOSITORY,
    RunningController,
    app,
    condition,
    failing_with,
    sha256_of,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.registry]


async def push(client: Registry, registry: str, repo: str, tag: str, root: Path) -> str:
    result = await oci.push(
        client, Reference.parse(f"{registry}/{repo}:{tag}"), root,
        source="https://example.com/app.git", revision=f"{tag}@sha1:0123456789abcdef",
    )  # fmt: skip
    return result.digest


def ocirepository(
    controller: RunningController, namespace: str, name: str, url: str, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": OCIREPOSITORY[0],
        "kind": OCIREPOSITORY[1],
        "metadata": {"name": name, "namespace": namespace, "labels": controller.labels},
        "spec": {"url": url, "interval": "10m", "insecure": True, **spec},
    }


async def get(kube_client: kube.Client, namespace: str, name: str) -> dict[str, Any]:
    return await kube_client.get(*OCIREPOSITORY, name, namespace)


def ready_with(revision: str | None = None) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        ready = condition(obj, "Ready")
        if ready is None or ready["status"] != "True":
            return False
        if ready.get("observedGeneration") != obj["metadata"]["generation"]:
            return False
        got = ((obj.get("status") or {}).get("artifact") or {}).get("revision")
        return revision is None or got == revision

    return check


def files_in(tarball: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        assert response.status_code == 200, url
        return response.content


async def test_becomes_ready_with_the_exact_revision_and_a_served_artifact(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"deploy.yaml": "kind: ConfigMap\n", "sub/svc.yaml": "a: 1\n",
                                  ".git/config": "x", "logo.png": "binary"})  # fmt: skip
    digest = await push(client, registry, f"{namespace}/ready", "v1.0.0", root)
    url = f"oci://{registry}/{namespace}/ready"
    await kube.create(ocirepository(controller, namespace, "app", url, ref={"tag": "v1.0.0"}))

    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(), what="Ready")
    status = obj["status"]
    artifact = status["artifact"]
    assert artifact["revision"] == f"v1.0.0@{digest}"
    assert artifact["path"] == f"ocirepository/{namespace}/app/{digest.split(':')[1]}.tar.gz"
    assert artifact["url"] == f"http://{controller.storage_addr}/{artifact['path']}"
    assert status["url"] == (
        f"http://{controller.storage_addr}/ocirepository/{namespace}/app/latest.tar.gz"
    )
    assert artifact["metadata"][oci.SOURCE] == "https://example.com/app.git"
    assert obj["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["reason"] == "Succeeded"
    assert ready["message"] == f"stored artifact for digest 'v1.0.0@{digest}'"
    assert condition(obj, "ArtifactInStorage")["status"] == "True"  # type: ignore[index]
    assert condition(obj, "Reconciling") is None

    # The served file is the stored one: its digest is status.artifact.digest.
    served = await download(artifact["url"])
    assert sha256_of(served) == artifact["digest"]
    assert artifact["size"] == len(served)
    assert await download(status["url"]) == served
    # Flux's default exclusions apply to what is stored.
    assert files_in(served) == {"deploy.yaml": b"kind: ConfigMap\n", "sub/svc.yaml": b"a: 1\n"}

    events = await kube.list("v1", "Event", namespace)
    new = [e for e in events["items"] if e["reason"] == "NewArtifact"]
    assert len(new) == 1
    assert new[0]["message"] == (
        f"stored artifact with revision 'v1.0.0@{digest}' from '{url}', origin source "
        "'https://example.com/app.git', origin revision 'v1.0.0@sha1:0123456789abcdef'"
    )
    assert new[0]["metadata"]["annotations"] == {
        "source.toolkit.fluxcd.io/revision": artifact["revision"],
        "source.toolkit.fluxcd.io/digest": artifact["digest"],
    }
    assert new[0]["involvedObject"]["kind"] == "OCIRepository"

    # Metrics with controller-runtime's and Flux's names; JSON logs with Flux's fields.
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"http://{controller.metrics_addr}/metrics")).text
    assert 'controller_runtime_reconcile_total{controller="ocirepository",result=' in metrics
    assert (
        f'gotk_reconcile_duration_seconds_count{{kind="OCIRepository",name="app",'
        f'namespace="{namespace}"}}'
    ) in metrics
    lines = [json.loads(line) for line in controller.logs().splitlines() if line.startswith("{")]
    stored = [
        line for line in lines
        if line.get("namespace") == namespace and line["msg"].startswith("stored artifact")
    ]  # fmt: skip
    assert len(stored) == 1
    assert stored[0]["level"] == "info"
    assert stored[0]["controller"] == "ocirepository"
    assert stored[0]["controllerKind"] == "OCIRepository"
    assert stored[0]["name"] == "app"
    assert stored[0]["reconcileID"]
    assert stored[0]["revision"] == artifact["revision"]


async def test_semver_moves_to_a_higher_tag_and_digest_refs_pin(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": "v: 1\n"})
    first = await push(client, registry, f"{namespace}/semver", "1.0.0", root)
    (root / "a.yaml").write_text("v: 2-rc\n")
    await push(
        client, registry, f"{namespace}/semver", "1.1.0-rc.1", root
    )  # prerelease: not in range
    url = f"oci://{registry}/{namespace}/semver"
    await kube.create(ocirepository(controller, namespace, "app", url, ref={"semver": ">=1.0.0"}))
    await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"1.0.0@{first}"))

    (root / "a.yaml").write_text("v: 2\n")
    second = await push(client, registry, f"{namespace}/semver", "1.1.0", root)
    await kube.patch(*OCIREPOSITORY, "app",
                     {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "1"}}},
                     namespace)  # fmt: skip
    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"1.1.0@{second}"))
    assert obj["status"]["lastHandledReconcileAt"] == "1"
    assert files_in(await download(obj["status"]["artifact"]["url"])) == {"a.yaml": b"v: 2\n"}

    # A digest wins over the semver range.
    await kube.patch(
        *OCIREPOSITORY, "app", {"spec": {"ref": {"semver": ">=1.0.0", "digest": first}}}, namespace
    )
    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(first))
    assert obj["status"]["artifact"]["revision"] == first


async def test_requested_at_reconciles_at_once_and_suspend_stops_updates(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": "v: 1\n"})
    first = await push(client, registry, f"{namespace}/requested", "latest", root)
    url = f"oci://{registry}/{namespace}/requested"
    await kube.create(
        ocirepository(controller, namespace, "app", url, interval="1h")
    )  # no ref: latest
    await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"latest@{first}"))

    (root / "a.yaml").write_text("v: 2\n")
    second = await push(client, registry, f"{namespace}/requested", "latest", root)
    await kube.patch(*OCIREPOSITORY, "app",
                     {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}},
                     namespace)  # fmt: skip
    await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"latest@{second}"),
                   within=20, what="the requested reconcile")  # fmt: skip

    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"suspend": True}}, namespace)
    (root / "a.yaml").write_text("v: 3\n")
    await push(client, registry, f"{namespace}/requested", "latest", root)
    await kube.patch(*OCIREPOSITORY, "app",
                     {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}},
                     namespace)  # fmt: skip
    import asyncio

    await asyncio.sleep(3)
    obj = await get(kube, namespace, "app")
    assert obj["status"]["artifact"]["revision"] == f"latest@{second}"
    assert obj["status"]["lastHandledReconcileAt"] == "now"


async def test_copy_keeps_the_layer_and_ignore_changes_the_content(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": "a\n", "b/b.yaml": "b\n", "c.txt": "c\n"})
    digest = await push(client, registry, f"{namespace}/layers", "v1", root)
    url = f"oci://{registry}/{namespace}/layers"
    await kube.create(ocirepository(controller, namespace, "copy", url, ref={"tag": "v1"},
        layerSelector={"mediaType": oci.FLUX_CONTENT, "operation": "copy"},
    ))  # fmt: skip
    await kube.create(ocirepository(controller, namespace, "extract", url, ref={"tag": "v1"},
                                    ignore="*.txt\n"))  # fmt: skip
    copied = await wait_for(lambda: get(kube, namespace, "copy"), ready_with())
    extracted = await wait_for(lambda: get(kube, namespace, "extract"), ready_with())

    manifest = json.loads((await client.fetch_manifest(Reference.parse(
        f"{registry}/{namespace}/layers@{digest}"))).data)  # fmt: skip
    layer = manifest["layers"][0]
    assert copied["status"]["artifact"]["digest"] == layer["digest"]  # stored as it is
    assert copied["status"]["observedLayerSelector"] == {
        "mediaType": oci.FLUX_CONTENT, "operation": "copy"}  # fmt: skip
    assert set(files_in(await download(extracted["status"]["artifact"]["url"]))) == {
        "a.yaml", "b/b.yaml"}  # fmt: skip
    assert extracted["status"]["observedIgnore"] == "*.txt\n"

    # A new ignore rule rebuilds the artifact from the same revision.
    await kube.patch(*OCIREPOSITORY, "extract", {"spec": {"ignore": "b/\n"}}, namespace)
    obj = await wait_for(
        lambda: get(kube, namespace, "extract"),
        lambda o: ready_with()(o) and o["status"].get("observedIgnore") == "b/\n",
    )
    assert set(files_in(await download(obj["status"]["artifact"]["url"]))) == {"a.yaml", "c.txt"}
    assert obj["status"]["artifact"]["revision"] == extracted["status"]["artifact"]["revision"]


async def test_garbage_collection_keeps_two_and_deletion_removes_all(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": "0\n"})
    url = f"oci://{registry}/{namespace}/gc"
    folder = controller.storage / "ocirepository" / namespace / "app"
    for i in range(4):
        (root / "a.yaml").write_text(f"{i}\n")
        digest = await push(client, registry, f"{namespace}/gc", f"v{i}", root)
        if i == 0:
            await kube.create(ocirepository(controller, namespace, "app", url, ref={"tag": "v0"}))
        else:
            await kube.patch(*OCIREPOSITORY, "app", {"spec": {"ref": {"tag": f"v{i}"}}},
                             namespace)  # fmt: skip
        await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"v{i}@{digest}"))
    tarballs = sorted(p.name for p in folder.glob("*.tar.gz") if p.name != "latest.tar.gz")
    assert len(tarballs) == 2
    assert f"{digest.split(':')[1]}.tar.gz" in tarballs

    await kube.delete(*OCIREPOSITORY, "app", namespace)
    await wait_for(lambda: get(kube, namespace, "app"), lambda o: o == {}, what="deletion")
    assert not folder.exists()


async def test_failures_keep_the_last_good_artifact_and_recover(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": "good\n"})
    digest = await push(client, registry, f"{namespace}/failing", "v1", root)
    url = f"oci://{registry}/{namespace}/failing"
    await kube.create(ocirepository(controller, namespace, "app", url, ref={"tag": "v1"}))
    good = await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"v1@{digest}"))
    good_artifact = good["status"]["artifact"]

    # A missing tag: Ready=False with Flux's reason; the last artifact stays stored and served.
    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"ref": {"tag": "v2"}}}, namespace)
    obj = await wait_for(lambda: get(kube, namespace, "app"), failing_with("OCIArtifactPullFailed"))
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["message"].startswith("failed to determine artifact digest")
    assert f"{namespace}/failing:v2" in ready["message"]
    assert condition(obj, "FetchFailed")["reason"] == "OCIArtifactPullFailed"  # type: ignore[index]
    assert condition(obj, "Reconciling")["reason"] == "ProgressingWithRetry"  # type: ignore[index]
    assert obj["status"]["artifact"] == good_artifact
    assert sha256_of(await download(good_artifact["url"])) == good_artifact["digest"]
    warnings = [e for e in (await kube.list("v1", "Event", namespace))["items"]
                if e["type"] == "Warning" and e["reason"] == "OCIArtifactPullFailed"]  # fmt: skip
    assert warnings

    # Recovery is picked up without a restart: the tag appears, the retry finds it.
    (root / "a.yaml").write_text("better\n")
    newer = await push(client, registry, f"{namespace}/failing", "v2", root)
    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"v2@{newer}"))
    assert condition(obj, "FetchFailed") is None

    # An unreachable registry.
    dead = ocirepository(
        controller, namespace, "dead", "oci://127.0.0.1:9/e2e/none", ref={"tag": "v1"}
    )
    await kube.create(dead)
    obj = await wait_for(
        lambda: get(kube, namespace, "dead"), failing_with("OCIArtifactPullFailed")
    )
    assert "127.0.0.1:9" in condition(obj, "Ready")["message"]  # type: ignore[index]


async def test_corrupted_layer_is_refused_and_nothing_is_stored(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tidegate_env: Environment, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": f"{tmp_path}\n"})  # content no other test pushes
    digest = await push(client, registry, f"{namespace}/corrupt", "v1", root)
    manifest = json.loads((await client.fetch_manifest(Reference.parse(
        f"{registry}/{namespace}/corrupt@{digest}"))).data)  # fmt: skip
    hexdigest = manifest["layers"][0]["digest"].split(":")[1]
    blob = (tidegate_env.directory / "registry" / "data" / "docker" / "registry" / "v2" / "blobs"
            / "sha256" / hexdigest[:2] / hexdigest / "data")  # fmt: skip
    data = blob.read_bytes()
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    await kube.create(ocirepository(controller, namespace, "app", f"oci://{registry}/{namespace}/corrupt",
                                    ref={"tag": "v1"}))  # fmt: skip
    obj = await wait_for(
        lambda: get(kube, namespace, "app"), failing_with("OCIArtifactLayerOperationFailed")
    )
    assert "hashes to sha256:" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "artifact" not in obj["status"]
    folder = controller.storage / "ocirepository" / namespace / "app"
    assert not folder.exists() or not any(folder.glob("*.tar.gz"))


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    """A registry of its own that requires basic auth as user `ci`, password `s3cret`."""
    process, host = start_registry(tmp_path / "private", htpasswd_auth(tmp_path / "auth", *CI))
    try:
        yield host
    finally:
        stop_registry(process)


CI = ("ci", "s3cret")


async def push_private(host: str, repository: str, root: Path) -> str:
    async with Registry(host, insecure=True, credentials=oci.Credentials(*CI),
                        docker_config=False) as private:  # fmt: skip
        return await push(private, host, repository, "v1", root)


def pull_secret(namespace: str, name: str, host: str, password: str) -> dict[str, Any]:
    """A `kubernetes.io/dockerconfigjson` Secret for user `ci` at `host`."""
    auth = base64.b64encode(f"{CI[0]}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": base64.b64encode(config).decode()}}  # fmt: skip


@pytest.mark.services
async def test_basic_auth_from_a_docker_config_secret(
    kube: kube.Client, namespace: str, controller: RunningController, private_registry: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    host = private_registry
    digest = await push_private(
        host, f"{namespace}/private", app(tmp_path / "app", {"a.yaml": "p\n"})
    )
    url = f"oci://{host}/{namespace}/private"
    await kube.create(ocirepository(controller, namespace, "anonymous", url, ref={"tag": "v1"}))
    obj = await wait_for(lambda: get(kube, namespace, "anonymous"),
                         failing_with("OCIArtifactPullFailed"))  # fmt: skip
    assert "s3cret" not in json.dumps(obj)

    await kube.create(pull_secret(namespace, "right", host, "s3cret"))
    await kube.create(pull_secret(namespace, "wrong", host, "guess"))
    for name, secret in (("wrong", "wrong"), ("right", "right"), ("missing", "absent")):
        await kube.create(ocirepository(controller, namespace, name, url, ref={"tag": "v1"},
                                        secretRef={"name": secret}))  # fmt: skip
    await wait_for(lambda: get(kube, namespace, "right"), ready_with(f"v1@{digest}"))
    wrong = await wait_for(lambda: get(kube, namespace, "wrong"),
                           failing_with("OCIArtifactPullFailed"))  # fmt: skip
    assert "guess" not in json.dumps(wrong)
    assert "s3cret" not in json.dumps(wrong)
    missing = await wait_for(lambda: get(kube, namespace, "missing"),
                             failing_with("AuthenticationFailed"))  # fmt: skip
    assert "absent" in condition(missing, "Ready")["message"]  # type: ignore[index]
    assert "s3cret" not in controller.logs()
    assert "guess" not in controller.logs()


async def test_invalid_specs_stall_without_retrying(
    kube: kube.Client, namespace: str, registry: str, controller: RunningController,
) -> None:  # fmt: skip
    await kube.create(
        ocirepository(controller, namespace, "tagged", f"oci://{registry}/{namespace}/x:v1")
    )
    await kube.create(ocirepository(controller, namespace, "range", f"oci://{registry}/{namespace}/x",
                                    ref={"semver": ">= one.two"}))  # fmt: skip
    tagged = await wait_for(
        lambda: get(kube, namespace, "tagged"),
        lambda o: (condition(o, "Stalled") or {}).get("status") == "True",
    )
    stalled = condition(tagged, "Stalled")
    assert stalled is not None
    assert stalled["reason"] == "URLInvalid"
    assert "must not contain a tag; remove ':v1'" in stalled["message"]
    assert condition(tagged, "Ready")["status"] == "False"  # type: ignore[index]
    assert condition(tagged, "Reconciling") is None
    assert tagged["status"]["observedGeneration"] == tagged["metadata"]["generation"]
    await kube.create(ocirepository(controller, namespace, "cloud", f"oci://{registry}/{namespace}/x",
                                    provider="aws"))  # fmt: skip
    cloud = await wait_for(
        lambda: get(kube, namespace, "cloud"),
        lambda o: (condition(o, "Stalled") or {}).get("status") == "True",
    )
    assert "failed to get credential from aws" in condition(cloud, "Ready")["message"]  # type: ignore[index]
    ranged = await wait_for(
        lambda: get(kube, namespace, "range"),
        lambda o: (condition(o, "Stalled") or {}).get("status") == "True",
    )
    assert "semver '>= one.two' parse error" in condition(ranged, "Stalled")["message"]  # type: ignore[index]

    # No retry storm: the stalled objects are not reconciled again until they change.
    import asyncio

    before = (await get(kube, namespace, "tagged"))["metadata"]["resourceVersion"]
    await asyncio.sleep(4)
    assert (await get(kube, namespace, "tagged"))["metadata"]["resourceVersion"] == before
    events = [e for e in (await kube.list("v1", "Event", namespace))["items"]
              if e["involvedObject"]["name"] == "tagged"]  # fmt: skip
    assert sum(e.get("count", 1) for e in events) == 1


@pytest.mark.services
async def test_cert_secret_ref_trusts_a_tls_registry_with_client_certificates(
    kube: kube.Client, namespace: str, controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    from tidegate.testing._certs import write_pki

    pki = write_pki(tmp_path / "pki")
    tls = {"certificate": str(pki.serving_cert), "key": str(pki.serving_key),
           "clientcas": [str(pki.ca_cert)]}  # fmt: skip
    process, host = start_registry(tmp_path / "mtls", None, tls)
    try:
        root = app(tmp_path / "app", {"a.yaml": "tls\n"})
        async with Registry(host, ca_file=pki.ca_cert, client_cert=(pki.admin_cert, pki.admin_key),
                            docker_config=False) as client:  # fmt: skip
            digest = await push(client, host, f"{namespace}/tls", "v1", root)
        url = f"oci://{host}/{namespace}/tls"

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        await kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "tls", "namespace": namespace}, "data": {
            "ca.crt": b64(pki.ca_cert), "tls.crt": b64(pki.admin_cert),
            "tls.key": b64(pki.admin_key)}})  # fmt: skip
        await kube.create(ocirepository(controller, namespace, "untrusted", url,
                                        ref={"tag": "v1"}, insecure=False))  # fmt: skip
        await kube.create(ocirepository(controller, namespace, "trusted", url, ref={"tag": "v1"},
                                        insecure=False, certSecretRef={"name": "tls"}))  # fmt: skip
        await wait_for(lambda: get(kube, namespace, "trusted"), ready_with(f"v1@{digest}"))
        untrusted = await wait_for(lambda: get(kube, namespace, "untrusted"),
                                   failing_with("OCIArtifactPullFailed"))  # fmt: skip
        assert "CERTIFICATE_VERIFY_FAILED" in condition(untrusted, "Ready")["message"]  # type: ignore[index]
    finally:
        stop_registry(process)


@pytest.mark.services
async def test_service_account_image_pull_secrets(
    kube: kube.Client, namespace: str, controller: RunningController, private_registry: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    host = private_registry
    digest = await push_private(host, f"{namespace}/sa", app(tmp_path / "app", {"a.yaml": "sa\n"}))
    await kube.create(pull_secret(namespace, "pull", host, "s3cret"))
    await kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "puller", "namespace": namespace},
                       "imagePullSecrets": [{"name": "pull"}]})  # fmt: skip
    url = f"oci://{host}/{namespace}/sa"
    await kube.create(ocirepository(controller, namespace, "app", url, ref={"tag": "v1"},
                                    serviceAccountName="puller"))  # fmt: skip
    await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"v1@{digest}"))


async def test_corrupted_manifest_is_refused(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tidegate_env: Environment, tmp_path: Path,
) -> None:  # fmt: skip
    root = app(tmp_path / "app", {"a.yaml": f"{tmp_path} manifest\n"})
    digest = await push(client, registry, f"{namespace}/badmanifest", "v1", root)
    hexdigest = digest.split(":")[1]
    blob = (tidegate_env.directory / "registry" / "data" / "docker" / "registry" / "v2" / "blobs"
            / "sha256" / hexdigest[:2] / hexdigest / "data")  # fmt: skip
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion": 2'))
    url = f"oci://{registry}/{namespace}/badmanifest"
    await kube.create(ocirepository(controller, namespace, "app", url, ref={"tag": "v1"}))
    obj = await wait_for(lambda: get(kube, namespace, "app"), failing_with("OCIArtifactPullFailed"))
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert message.startswith(
        f"failed to pull artifact from 'oci://{registry}/{namespace}/badmanifest'"
    )
    assert "hashes to sha256:" in message
    assert "artifact" not in obj["status"]
