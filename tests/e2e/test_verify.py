"""OCIRepository.spec.verify end to end: the controller process refuses unsigned or wrongly
signed revisions, keeps serving the last verified artifact, and recovers once signed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tidegate import kube
from tidegate.oci import Reference, Registry
from tidegate.sign import sign_artifact
from tidegate.sign._keys import public_pem

from .support import RunningController, app, condition, sha256_of, wait_for
from .test_ocirepository import download, get, ocirepository, push, ready_with

pytestmark = [pytest.mark.cluster, pytest.mark.registry]


def secret(namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def verification_failed(containing: str) -> Any:
    """SourceVerified=False with VerificationError, and Ready=False saying `containing`."""

    def check(obj: dict[str, Any]) -> bool:
        verified = condition(obj, "SourceVerified")
        ready = condition(obj, "Ready")
        return (
            verified is not None
            and (verified["status"], verified["reason"]) == ("False", "VerificationError")
            and ready is not None
            and ready["status"] == "False"
            and containing in verified["message"]
            and containing in ready["message"]
        )

    return check


async def request_reconcile(kube_client: kube.Client, namespace: str, name: str) -> None:
    from .support import OCIREPOSITORY

    stamp = str(__import__("time").time_ns())
    patch = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}}
    await kube_client.patch(*OCIREPOSITORY, name, patch, namespace)


async def test_cosign_keys_gate_every_revision(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    trusted, stranger = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    await kube.create(secret(namespace, "cosign-keys", {
        "cosign.pub": public_pem(trusted.public_key()), "README": b"not a key",
    }))  # fmt: skip
    repo = f"{namespace}/signed"
    root = app(tmp_path / "app", {"a.yaml": "v1\n"})
    first = await push(client, registry, repo, "latest", root)
    await sign_artifact(client, Reference.parse(f"{registry}/{repo}:latest"), trusted)
    url = f"oci://{registry}/{repo}"
    verify = {"provider": "cosign", "secretRef": {"name": "cosign-keys"}}
    await kube.create(ocirepository(controller, namespace, "app", url, verify=verify))
    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"latest@{first}"))
    verified = condition(obj, "SourceVerified")
    assert verified is not None
    assert (verified["status"], verified["reason"]) == ("True", "Succeeded")
    assert verified["message"] == f"verified signature of revision latest@{first}"
    good = obj["status"]["artifact"]

    # A new revision without a signature: refused before download, the old one stays served.
    (root / "a.yaml").write_text("v2 unsigned\n")
    second = await push(client, registry, repo, "latest", root)
    await request_reconcile(kube, namespace, "app")
    obj = await wait_for(
        lambda: get(kube, namespace, "app"),
        verification_failed(f"no cosign signature found for '{registry}/{repo}@{second}'"),
    )
    assert condition(obj, "Ready")["reason"] == "VerificationError"  # type: ignore[index]
    assert condition(obj, "Ready")["message"].startswith(  # type: ignore[index]
        "failed to verify the signature using provider 'cosign': "
    )
    assert obj["status"]["artifact"] == good
    assert sha256_of(await download(good["url"])) == good["digest"]
    stored = list((controller.storage / "ocirepository" / namespace / "app").glob("*.tar.gz"))
    assert [p.name for p in stored if p.name != "latest.tar.gz"] == [
        first.split(":")[1] + ".tar.gz"
    ]

    # Signed by a key the Secret does not hold.
    await sign_artifact(client, Reference.parse(f"{registry}/{repo}:latest"), stranger)
    await request_reconcile(kube, namespace, "app")
    obj = await wait_for(
        lambda: get(kube, namespace, "app"),
        verification_failed("signature does not verify with the given public key"),
    )
    assert obj["status"]["artifact"] == good

    # A valid signature of v1 copied to v2's signature tag.
    v1_sig = await client.fetch_manifest(
        Reference.parse(f"{registry}/{repo}:sha256-{first.split(':')[1]}.sig")
    )
    await client.push_manifest(
        Reference.parse(f"{registry}/{repo}:sha256-{second.split(':')[1]}.sig"),
        v1_sig.data, v1_sig.media_type,
    )  # fmt: skip
    await request_reconcile(kube, namespace, "app")
    obj = await wait_for(
        lambda: get(kube, namespace, "app"),
        verification_failed(f"payload signs {first}, not this artifact ({second})"),
    )
    assert obj["status"]["artifact"] == good
    warnings = [e for e in (await kube.list("v1", "Event", namespace))["items"]
                if e["type"] == "Warning" and e["reason"] == "VerificationError"]  # fmt: skip
    assert warnings

    # Signed properly: the retry after the failed verification picks it up.
    await sign_artifact(client, Reference.parse(f"{registry}/{repo}:latest"), trusted)
    obj = await wait_for(lambda: get(kube, namespace, "app"), ready_with(f"latest@{second}"))
    assert condition(obj, "SourceVerified")["status"] == "True"  # type: ignore[index]

    # Turning verification off removes the condition.
    from .support import OCIREPOSITORY

    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"verify": None}}, namespace)
    obj = await wait_for(
        lambda: get(kube, namespace, "app"),
        lambda o: ready_with(f"latest@{second}")(o) and condition(o, "SourceVerified") is None,
    )


async def test_verification_secret_problems_name_the_secret(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/secretless"
    await push(client, registry, repo, "latest", app(tmp_path / "app", {"a.yaml": "x\n"}))
    url = f"oci://{registry}/{repo}"
    keys = {"provider": "cosign", "secretRef": {"name": "nope"}}
    await kube.create(ocirepository(controller, namespace, "missing", url, verify=keys))
    await kube.create(secret(namespace, "nokeys", {"key.txt": b"x"}))
    keys = {"provider": "cosign", "secretRef": {"name": "nokeys"}}
    await kube.create(ocirepository(controller, namespace, "nokeys", url, verify=keys))
    await kube.create(ocirepository(controller, namespace, "noidentity", url,
                                    verify={"provider": "cosign"}))  # fmt: skip
    await kube.create(ocirepository(controller, namespace, "notation", url,
                                    verify={"provider": "notation"}))  # fmt: skip
    for name, text in (
        ("missing", f"failed to get secret '{namespace}/nope'"),
        ("nokeys", f"no public keys (keys ending in .pub) found in secret '{namespace}/nokeys'"),
        ("noidentity", "provider 'cosign keyless': keyless verification needs at least one"),
        ("notation", "verification secret cannot be empty"),
    ):
        obj = await wait_for(lambda n=name: get(kube, namespace, n), verification_failed(text))  # type: ignore[misc]
        assert "artifact" not in obj["status"], name


async def test_notation_signature_from_the_secrets_trust_policy(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    from cryptography.hazmat.primitives.serialization import Encoding

    from tidegate.sign._notation import JWS_MEDIA_TYPE
    from tidegate.testing._notation import (
        descriptor,
        make_ca,
        make_signing_cert,
        push_notation_signature,
        sign_jws,
    )

    repo = f"{namespace}/notation"
    digest = await push(client, registry, repo, "v1", app(tmp_path / "app", {"a.yaml": "n\n"}))
    ref = Reference.parse(f"{registry}/{repo}@{digest}")
    manifest = await client.fetch_manifest(ref)
    ca, ca_key = make_ca()
    leaf, leaf_key = make_signing_cert(ca, ca_key)
    target = descriptor(manifest.media_type, digest, len(manifest.data))
    envelope = sign_jws(leaf_key, [leaf, ca], target)
    await push_notation_signature(client, ref, envelope, JWS_MEDIA_TYPE)
    policy = {
        "version": "1.0",
        "trustPolicies": [{
            "name": "tidegate", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:tidegate"], "trustedIdentities": ["*"],
        }],
    }  # fmt: skip
    import json

    other, _ = make_ca("another CA")
    for name, cert in (("trusted", ca), ("untrusted", other)):
        await kube.create(secret(namespace, name, {
            "trustpolicy.json": json.dumps(policy).encode(),
            "ca.crt": cert.public_bytes(Encoding.PEM),
        }))  # fmt: skip
        await kube.create(ocirepository(
            controller, namespace, name, f"oci://{registry}/{repo}", ref={"tag": "v1"},
            verify={"provider": "notation", "secretRef": {"name": name}},
        ))  # fmt: skip
    obj = await wait_for(lambda: get(kube, namespace, "trusted"), ready_with(f"v1@{digest}"))
    assert condition(obj, "SourceVerified")["message"] == (  # type: ignore[index]
        f"verified signature of revision v1@{digest}"
    )
    obj = await wait_for(
        lambda: get(kube, namespace, "untrusted"),
        verification_failed("failed to verify the signature using provider 'notation'"),
    )
    assert "authenticity check failed" in condition(obj, "SourceVerified")["message"]  # type: ignore[index]
    assert "artifact" not in obj["status"]


WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
GITHUB = "https://token.actions.githubusercontent.com"


async def test_keyless_signature_with_a_trusted_root_secret(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    from tidegate.testing._sigstore import (
        TestCA,
        TestLog,
        push_keyless_signature,
        trusted_root_json,
    )

    ca, log = TestCA(), TestLog()
    repo = f"{namespace}/keyless"
    digest = await push(client, registry, repo, "v1", app(tmp_path / "app", {"a.yaml": "k\n"}))
    ref = Reference.parse(f"{registry}/{repo}:v1")
    await push_keyless_signature(client, ref, digest, ca.issue(WORKFLOW, GITHUB), log)
    await kube.create(secret(namespace, "sigstore", {
        "trusted_root.json": trusted_root_json(ca, log),
    }))  # fmt: skip
    url = f"oci://{registry}/{repo}"
    for name, subject in (("acme", "^https://github.com/acme/.*$"),
                          ("other", "^https://github.com/other/.*$")):  # fmt: skip
        await kube.create(ocirepository(controller, namespace, name, url, ref={"tag": "v1"},
            verify={"provider": "cosign", "trustedRootSecretRef": {"name": "sigstore"},
                    "matchOIDCIdentity": [{"issuer": f"^{GITHUB}$", "subject": subject}]},
        ))  # fmt: skip
    obj = await wait_for(lambda: get(kube, namespace, "acme"), ready_with(f"v1@{digest}"))
    assert condition(obj, "SourceVerified")["status"] == "True"  # type: ignore[index]
    obj = await wait_for(
        lambda: get(kube, namespace, "other"),
        verification_failed("failed to verify the signature using provider 'cosign keyless'"),
    )
    message = condition(obj, "SourceVerified")["message"]  # type: ignore[index]
    assert f"subject '{WORKFLOW}'" in message
    assert "artifact" not in obj["status"]

    # Sigstore's public-good root (the default without trustedRootSecretRef) does not trust
    # the test CA.
    await kube.create(ocirepository(controller, namespace, "public", url, ref={"tag": "v1"},
        verify={"provider": "cosign",
                "matchOIDCIdentity": [{"issuer": ".*", "subject": ".*"}]},
    ))  # fmt: skip
    obj = await wait_for(
        lambda: get(kube, namespace, "public"),
        verification_failed("provider 'cosign keyless'"),
    )
    assert "artifact" not in obj["status"]
