"""Registries that require authentication: htpasswd, and token auth with our token service."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tidegate.testing import StartError
from tidegate.testing._registry_auth import (
    TokenRequest,
    TokenServer,
    htpasswd_auth,
    start_registry,
)

pytestmark = pytest.mark.services

SERVICE = "tidegate-test-registry"
USERS = {"alice": "s3cret"}
PUSH_PULL = "repository:demo/app:pull,push"


def running_registry(folder: Path, auth: dict[str, Any]) -> Iterator[str]:
    process, address = start_registry(folder, auth)
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def htpasswd_registry(tmp_path: Path) -> Iterator[str]:
    yield from running_registry(tmp_path, htpasswd_auth(tmp_path, "alice", "s3cret"))


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[TokenServer]:
    with TokenServer(tmp_path / "tokens", USERS) as server:
        yield server


@pytest.fixture
def token_registry(tmp_path: Path, tokens: TokenServer) -> Iterator[str]:
    yield from running_registry(tmp_path / "registry", tokens.auth_config())


def get_token(
    tokens: TokenServer, scopes: list[str], auth: tuple[str, str] | None
) -> httpx.Response:
    params = {"service": SERVICE, "account": "alice", "scope": scopes}
    return httpx.get(tokens.realm, params=params, auth=auth)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def push_blob(registry: str, token: str, data: bytes) -> str:
    """Upload `data` to demo/app as a monolithic blob; return its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    headers = {"Authorization": f"Bearer {token}"}
    started = httpx.post(f"{registry}/v2/demo/app/blobs/uploads/", headers=headers)
    assert started.status_code == 202, started.text
    location = httpx.URL(registry).join(started.headers["Location"])
    # The Location carries the upload's `_state`; the digest joins it, it does not replace it.
    assert "_state" in location.params
    finished = httpx.put(
        location.copy_merge_params({"digest": digest}), headers=headers, content=data
    )
    assert finished.status_code == 201, finished.text
    return digest


def test_htpasswd_registry_asks_for_basic_credentials(htpasswd_registry: str) -> None:
    anonymous = httpx.get(f"{htpasswd_registry}/v2/")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="tidegate-test"'
    assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"

    assert httpx.get(f"{htpasswd_registry}/v2/", auth=("alice", "s3cret")).status_code == 200
    wrong = httpx.get(f"{htpasswd_registry}/v2/", auth=("alice", "wrong"))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="tidegate-test"'
    assert httpx.get(f"{htpasswd_registry}/v2/", auth=("bob", "s3cret")).status_code == 401


def challenge(header: str) -> dict[str, str]:
    """A Bearer challenge's parameters, with the actions of a scope in a fixed order
    (distribution lists them in map order: `pull,push` or `push,pull`)."""
    assert header.startswith("Bearer ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', header))
    if "scope" in params:
        resource, _, actions = params["scope"].rpartition(":")
        params["scope"] = f"{resource}:{','.join(sorted(actions.split(',')))}"
    return params


def test_token_registry_challenges_with_the_token_service(
    token_registry: str, tokens: TokenServer
) -> None:
    base = httpx.get(f"{token_registry}/v2/")
    assert base.status_code == 401
    assert base.headers["WWW-Authenticate"] == f'Bearer realm="{tokens.realm}",service="{SERVICE}"'

    push = httpx.post(f"{token_registry}/v2/demo/app/blobs/uploads/")
    assert push.status_code == 401
    assert challenge(push.headers["WWW-Authenticate"]) == {
        "realm": tokens.realm, "service": SERVICE, "scope": PUSH_PULL,
    }  # fmt: skip


def test_a_granted_token_pushes_and_pulls_a_blob(token_registry: str, tokens: TokenServer) -> None:
    answer = get_token(tokens, [PUSH_PULL], auth=("alice", "s3cret"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")

    digest = push_blob(token_registry, body["token"], b"tidegate blob\n")
    pulled = httpx.get(
        f"{token_registry}/v2/demo/app/blobs/{digest}",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert pulled.status_code == 200
    assert pulled.content == b"tidegate blob\n"
    assert tokens.requests == [TokenRequest("alice", SERVICE, [PUSH_PULL], granted=True)]


def test_an_anonymous_token_cannot_push(token_registry: str, tokens: TokenServer) -> None:
    answer = get_token(tokens, [PUSH_PULL], auth=None)
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert claims(token)["access"] == []

    headers = {"Authorization": f"Bearer {token}"}
    # The token itself is valid: the base endpoint needs no scope.
    assert httpx.get(f"{token_registry}/v2/", headers=headers).status_code == 200
    refused = httpx.post(f"{token_registry}/v2/demo/app/blobs/uploads/", headers=headers)
    # distribution 2.8 answers 401 (not 403) and says why in the challenge.
    assert refused.status_code == 401
    assert challenge(refused.headers["WWW-Authenticate"]) == {
        "realm": tokens.realm, "service": SERVICE, "scope": PUSH_PULL,
        "error": "insufficient_scope",
    }  # fmt: skip
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert tokens.requests == [TokenRequest(None, SERVICE, [PUSH_PULL], granted=False)]


def test_the_token_service_refuses_a_wrong_password(tokens: TokenServer) -> None:
    answer = get_token(tokens, [PUSH_PULL], auth=("alice", "wrong"))
    assert answer.status_code == 401
    assert answer.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]
    }
    assert get_token(tokens, [PUSH_PULL], auth=("mallory", "s3cret")).status_code == 401
    assert [(r.username, r.granted) for r in tokens.requests] == [
        ("alice", False),
        ("mallory", False),
    ]


def test_the_token_grants_every_scope_asked(tokens: TokenServer) -> None:
    scopes = ["repository:demo/app:pull repository:demo/lib:pull,push", "repository:a/b:pull"]
    answer = get_token(tokens, scopes, auth=("alice", "s3cret"))
    token = answer.json()["token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (header["typ"], header["alg"]) == ("JWT", "ES256")
    assert len(header["x5c"]) == 1
    granted = claims(token)
    assert (granted["iss"], granted["sub"], granted["aud"]) == (
        "tidegate-test-issuer",
        "alice",
        SERVICE,
    )
    assert granted["nbf"] < granted["iat"] < granted["exp"] == granted["iat"] + 300
    assert granted["access"] == [
        {"type": "repository", "name": "demo/app", "actions": ["pull"]},
        {"type": "repository", "name": "demo/lib", "actions": ["pull", "push"]},
        {"type": "repository", "name": "a/b", "actions": ["pull"]},
    ]
    assert tokens.requests[0].scopes == [
        "repository:demo/app:pull",
        "repository:demo/lib:pull,push",
        "repository:a/b:pull",
    ]


def test_a_registry_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    auth = {
        "token": {
            "realm": "http://127.0.0.1:1/token",
            "service": SERVICE,
            "issuer": "nobody",
            "rootcertbundle": str(tmp_path / "missing.crt"),
        }
    }
    with pytest.raises(StartError) as failed:
        start_registry(tmp_path, auth)
    message = str(failed.value)
    assert message.startswith("registry exited with code")
    assert "missing.crt" in message
