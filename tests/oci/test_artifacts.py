"""Flux artifacts against the real registry: push, pull, tag, list, diff, corruption."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tidegate import oci
from tidegate.oci import (
    ArtifactError,
    DigestMismatch,
    NotFound,
    Reference,
    Registry,
    UnsafeArchive,
)
from tidegate.testing import Environment

from .hostile import HOSTILE, bomb

pytestmark = pytest.mark.registry
APP = Path(__file__).parent / "testdata" / "app"


@pytest.fixture
async def client(registry: str) -> AsyncIterator[Registry]:
    async with Registry(registry, insecure=True, docker_config=False) as reg:
        yield reg


def ref(registry: str, name: str) -> Reference:
    return Reference.parse(f"{registry}/{name}")


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def test_push_then_pull_gives_identical_files(
    client: Registry, registry: str, tmp_path: Path
) -> None:
    target = ref(registry, "apps/podinfo:v1.0.0")
    pushed = await oci.push(
        client, target, APP, source="https://github.com/org/repo", revision="main@sha1:abc123"
    )
    assert pushed.url == f"oci://{registry}/apps/podinfo:v1.0.0@{pushed.digest}"
    out = tmp_path / "out"
    pulled = await oci.pull(client, target, out)
    assert pulled.digest == pushed.digest
    expected = {
        name: data
        for name, data in tree(APP).items()
        if name not in ("logo.png", "NOTES.md", "overlays/prod/secrets.env")
    }
    assert tree(out) == expected
    assert pulled.annotations[oci.REVISION] == "main@sha1:abc123"

    by_digest = await oci.pull(client, target.with_digest(pushed.digest), tmp_path / "again")
    assert by_digest.files == pulled.files


async def test_manifest_is_exactly_flux_format(client: Registry, registry: str) -> None:
    target = ref(registry, "apps/format:latest")
    pushed = await oci.push(
        client, target, APP, source="src", revision="rev", annotations={"team": "platform"}
    )
    manifest = await client.fetch_manifest(target)
    assert manifest.media_type == oci.OCI_MANIFEST
    assert manifest.digest == pushed.digest == oci.sha256_digest(manifest.data)
    doc = json.loads(manifest.data)
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"]["mediaType"] == "application/vnd.cncf.flux.config.v1+json"
    assert [layer["mediaType"] for layer in doc["layers"]] == [
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    ]
    assert set(doc["annotations"]) == {
        "org.opencontainers.image.created",
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "team",
    }
    assert doc["annotations"]["org.opencontainers.image.source"] == "src"
    config = io.BytesIO()
    await client.fetch_blob("apps/format", doc["config"]["digest"], config)
    assert config.getvalue() == b"{}"


async def test_reproducible_push_gives_the_same_manifest_digest(
    client: Registry, registry: str, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(APP, copy)
    first = await oci.push(client, ref(registry, "apps/repro:a"), APP, reproducible=True,
                           source="s", revision="r")  # fmt: skip
    second = await oci.push(client, ref(registry, "apps/repro:b"), copy, reproducible=True,
                            source="s", revision="r")  # fmt: skip
    assert first.digest == second.digest
    doc = json.loads((await client.fetch_manifest(ref(registry, "apps/repro:a"))).data)
    assert doc["annotations"][oci.CREATED] == "1970-01-01T00:00:00Z"
    # Without --reproducible the created time (hence the manifest) changes, the layer does not.
    third = await oci.push(client, ref(registry, "apps/repro:c"), APP, source="s", revision="r")
    doc3 = json.loads((await client.fetch_manifest(ref(registry, "apps/repro:c"))).data)
    assert third.digest != first.digest
    assert doc3["layers"] == doc["layers"]


async def test_tag_and_list_with_filters(client: Registry, registry: str) -> None:
    repo = "apps/versions"
    for version in ("1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"):
        await oci.push(client, ref(registry, f"{repo}:{version}"), APP, revision=f"v{version}")
    digest = await oci.tag(client, ref(registry, f"{repo}:2.0.0"), ["latest", "stable"])
    assert await client.resolve(ref(registry, f"{repo}:stable")) == digest
    # Signature-like tags are hidden from the list.
    await client.push_manifest(
        ref(registry, f"{repo}:sha256-{'a' * 64}.sig"),
        (await client.fetch_manifest(ref(registry, f"{repo}:1.0.0"))).data,
        oci.OCI_MANIFEST,
    )

    everything = await oci.list_artifacts(client, repo)
    assert [a.tag for a in everything] == ["1.0.0", "1.1.0", "2.0.0", "2.0.0-rc.1", "latest",
                                           "stable"]  # fmt: skip
    assert everything[2].digest == digest
    assert everything[0].revision == "v1.0.0"

    ranged = await oci.list_artifacts(client, repo, semver=">=1.1.0")
    assert [a.tag for a in ranged] == ["2.0.0", "1.1.0"]  # newest first, no prerelease
    pre = await oci.list_artifacts(client, repo, semver=">=2.0.0-0")
    assert [a.tag for a in pre] == ["2.0.0", "2.0.0-rc.1"]
    regex = await oci.list_artifacts(client, repo, regex=r"^1\.")
    assert [a.tag for a in regex] == ["1.0.0", "1.1.0"]


async def test_diff_compares_content(client: Registry, registry: str, tmp_path: Path) -> None:
    target = ref(registry, "apps/diff:v1")
    await oci.push(client, target, APP)
    same = await oci.diff(client, target, APP)
    assert same.same

    changed = tmp_path / "changed"
    shutil.copytree(APP, changed)
    (changed / "base" / "deployment.yaml").write_text("changed: true\n")
    (changed / "extra.yaml").write_text("new: file\n")
    (changed / "hook.sh").unlink()
    result = await oci.diff(client, target, changed)
    assert (result.changed, result.only_local, result.only_in_artifact) == (
        ["base/deployment.yaml"],
        ["extra.yaml"],
        ["hook.sh"],
    )

    # Content, not bytes: the same files archived differently (another tool) are equal.
    other = tmp_path / "other.tgz"
    import tarfile

    with tarfile.open(other, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in tree(APP).items():
            if name in ("logo.png", "NOTES.md", "overlays/prod/secrets.env"):
                continue
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.uid = 1000
            tar.addfile(info, io.BytesIO(data))
    foreign = ref(registry, "apps/diff:foreign")
    await oci.push(client, foreign, other)
    assert (await oci.diff(client, foreign, APP)).same


async def test_missing_layer_media_type_lists_the_layers(client: Registry, registry: str) -> None:
    target = ref(registry, "apps/odd:v1")
    await oci.push(client, target, APP)
    with pytest.raises(ArtifactError) as caught:
        await oci.pull(client, target, Path("/nonexistent/never"),
                       layer_media_type="application/vnd.example.other")  # fmt: skip
    message = str(caught.value)
    assert "no layer of media type 'application/vnd.example.other'" in message
    assert "application/vnd.cncf.flux.content.v1.tar+gzip" in message
    assert not Path("/nonexistent/never").exists()


async def test_output_that_is_a_file(client: Registry, registry: str, tmp_path: Path) -> None:
    target = ref(registry, "apps/file-output:v1")
    await oci.push(client, target, APP / "base")
    occupied = tmp_path / "out"
    occupied.write_text("mine\n")
    with pytest.raises(ArtifactError, match="it is not a folder"):
        await oci.pull(client, target, occupied)
    assert occupied.read_text() == "mine\n"


async def test_unknown_tag_is_a_registry_error(client: Registry, registry: str) -> None:
    with pytest.raises(NotFound) as caught:
        await oci.pull(client, ref(registry, "apps/none:v9"), Path("/tmp/unused"))
    assert caught.value.code == "MANIFEST_UNKNOWN"
    assert f"'{registry}/apps/none:v9'" in str(caught.value)


async def push_layer(client: Registry, target: Reference, layer: bytes) -> str:
    """Push a hand-made layer as a Flux artifact (bypassing the safe builder)."""
    config = b"{}"
    await client.push_blob(target.repository, oci.sha256_digest(config), 2, config)
    digest = oci.sha256_digest(layer)
    await client.push_blob(target.repository, digest, len(layer), layer)
    manifest = oci.artifact_manifest(oci.sha256_digest(config), digest, len(layer), {})
    return await client.push_manifest(target, manifest, oci.OCI_MANIFEST)


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_pulling_hostile_artifacts_leaves_output_untouched(
    case: str, client: Registry, registry: str, tmp_path: Path
) -> None:
    data, words = HOSTILE[case]()
    target = ref(registry, f"hostile/{case}:v1")
    await push_layer(client, target, data)
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    (out / "existing.yaml").write_text("kept: true\n")
    with pytest.raises(UnsafeArchive, match=re.escape(words)) as caught:
        await oci.pull(client, target, out)
    assert f"'{target}'" in str(caught.value)
    assert tree(tmp_path) == {"work/out/existing.yaml": b"kept: true\n"}


async def test_bomb_is_stopped_by_max_size(client: Registry, registry: str, tmp_path: Path) -> None:
    target = ref(registry, "hostile/bomb:v1")
    await push_layer(client, target, bomb(64 << 20))
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match="maximum of 8388608 bytes"):
        await oci.pull(client, target, out, max_size=8 << 20)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def unique_tree(tmp_path: Path) -> Path:
    """Content no other test pushes: registries share blobs between repositories, so a
    blob corrupted on disk here must not be one that other tests reuse."""
    root = tmp_path / "unique"
    shutil.copytree(APP / "base", root)
    (root / "nonce.txt").write_text(f"{tmp_path}\n")
    return root


async def test_corrupted_blob_in_the_registry_is_refused(
    client: Registry, registry: str, tidegate_env: Environment, tmp_path: Path
) -> None:
    target = ref(registry, "corrupt/layer:v1")
    await oci.push(client, target, unique_tree(tmp_path))
    doc = json.loads((await client.fetch_manifest(target)).data)
    layer = tidegate_env.registry_blob(doc["layers"][0]["digest"])
    stored = layer.read_bytes()
    layer.write_bytes(stored[:-1] + bytes([stored[-1] ^ 0xFF]))  # same size, one bit flipped
    out = tmp_path / "out"
    with pytest.raises(DigestMismatch, match="hashes to sha256:"):
        await oci.pull(client, target, out)
    assert not out.exists()
    # The layer is extracted while it downloads (its files all came out intact here, the flip
    # is in the gzip trailer), yet an existing output stays exactly as it was.
    out.mkdir()
    (out / "previous.yaml").write_text("kept\n")
    with pytest.raises(DigestMismatch, match="hashes to sha256:"):
        await oci.pull(client, target, out)
    assert [p.name for p in out.iterdir()] == ["previous.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "unique"]  # no staging left


async def test_corrupted_manifest_in_the_registry_is_refused(
    client: Registry, registry: str, tidegate_env: Environment, tmp_path: Path
) -> None:
    target = ref(registry, "corrupt/manifest:v1")
    pushed = await oci.push(client, target, unique_tree(tmp_path), annotations={"team": "x"})
    path = tidegate_env.registry_blob(pushed.digest)
    data = path.read_bytes()
    # Still a valid manifest (distribution parses what it serves), but other bytes.
    path.write_bytes(data.replace(b'"team":"x"', b'"team":"y"'))
    with pytest.raises(DigestMismatch, match=f"not the expected {pushed.digest}"):
        await client.fetch_manifest(target.with_digest(pushed.digest))
    with pytest.raises(DigestMismatch):
        await oci.pull(client, target, tmp_path / "never-written")
    assert not (tmp_path / "never-written").exists()


async def test_chunked_upload_and_cross_repository_mount(registry: str, tmp_path: Path) -> None:
    # Unique per run, so that it is new even in a registry kept from earlier runs.
    data = hashlib.sha256(str(tmp_path).encode()).digest() * 40_000  # 1.28 MB
    digest = oci.sha256_digest(data)
    async with Registry(registry, insecure=True, chunk_size=256 * 1024, docker_config=False) as reg:
        sent: list[tuple[int, int]] = []
        assert await reg.push_blob(
            "chunks/a", digest, len(data), data, progress=lambda n, total: sent.append((n, total))
        )
        assert [n for n, _ in sent] == [256 * 1024] * 4 + [len(data) - 4 * 256 * 1024]
        assert {total for _, total in sent} == {len(data)}
        assert not await reg.push_blob("chunks/a", digest, len(data), data)  # already there
        assert not await reg.push_blob("chunks/b", digest, len(data), data, mount_from="chunks/a")
        assert await reg.blob_exists("chunks/b", digest)
        out = io.BytesIO()
        await reg.fetch_blob("chunks/b", digest, out)
        assert out.getvalue() == data


async def test_tags_follow_link_pagination(client: Registry, registry: str) -> None:
    target = ref(registry, "paged/app:t0")
    await oci.push(client, target, APP / "base")
    await oci.tag(client, target, [f"t{i}" for i in range(1, 12)])
    assert sorted(await client.tags("paged/app", page_size=5)) == sorted(f"t{i}" for i in range(12))


async def test_referrers_fall_back_to_the_tag_schema(client: Registry, registry: str) -> None:
    subject = await oci.push(client, ref(registry, "refs/app:v1"), APP / "base")
    assert await client.referrers("refs/app", subject.digest) == []
    other = await oci.push(client, ref(registry, "refs/app:sig"), APP / "base")
    size = len((await client.fetch_manifest(ref(registry, "refs/app:sig"))).data)
    signature = {"mediaType": oci.OCI_MANIFEST, "digest": other.digest, "size": size,
                 "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"}  # fmt: skip
    index = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                        "manifests": [signature]}).encode()  # fmt: skip
    fallback = ref(registry, f"refs/app:{subject.digest.replace(':', '-')}")
    await client.push_manifest(fallback, index, oci.OCI_INDEX)
    assert await client.referrers("refs/app", subject.digest) == [signature]
    assert await client.referrers("refs/app", subject.digest, "application/other") == []
