"""Registry credentials: `--creds`, docker config files and `docker-credential-*` helpers."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._errors import OCIError


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (refresh) token for OAuth2 token services."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """`user:password` as `--creds` takes it (a bare token counts as the password)."""
        user, sep, password = text.partition(":")
        return cls(user, password) if sep else cls("", text)

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        return f"Credentials(username={self.username!r}, password=***)"

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def docker_config_path() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def docker_credentials(registry: str, config: Path | None = None) -> Credentials | None:
    """The credentials the docker CLI would use for `registry` (host[:port]), if any.

    Looks at `credHelpers[registry]`, then `credsStore`, then `auths`, as docker does.
    """
    path = config or docker_config_path()
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OCIError(f"cannot read docker config {path}: {exc}") from exc
    helper = (document.get("credHelpers") or {}).get(registry) or document.get("credsStore")
    if helper:
        found = _from_helper(str(helper), registry)
        if found is not None:
            return found
    return config_credentials(document, registry, str(path))


def config_credentials(document: object, registry: str, source: str) -> Credentials | None:
    """The `auths` entry for `registry` in a parsed docker config (such as the content of a
    Kubernetes `kubernetes.io/dockerconfigjson` Secret); `source` names it in errors.
    Credential helpers are never run here."""
    if not isinstance(document, dict):
        raise OCIError(f"{source}: not a docker config (expected a JSON object)")
    auths = document.get("auths")
    if auths is None and "auths" not in document:
        auths = document  # the older `.dockercfg` layout: the entries at the top level
    for key, entry in (auths or {}).items():
        if _host_of(key) == registry and isinstance(entry, dict):
            return _from_auth_entry(entry, source, key)
    return None


def _host_of(key: str) -> str:
    host = re.sub(r"^https?://", "", key).split("/", 1)[0]
    # Docker Hub's legacy key names the index, not the registry host.
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def _from_auth_entry(entry: dict[str, object], path: Path | str, key: str) -> Credentials | None:
    identity = str(entry.get("identitytoken") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"])).decode()
        except ValueError as exc:
            raise OCIError(f"docker config {path}: invalid 'auth' for {key}") from exc
        user, _, password = decoded.partition(":")
        return Credentials(user, password, identity)
    if entry.get("username") or identity:
        return Credentials(str(entry.get("username") or ""), str(entry.get("password") or ""),
                           identity)  # fmt: skip
    return None


def _from_helper(helper: str, registry: str) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run(
            [program, "get"], input=registry, capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise OCIError(f"credential helper '{program}' is configured but not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise OCIError(f"credential helper '{program}' timed out") from exc
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        # The helper's output may contain secrets; report only that it failed.
        raise OCIError(f"credential helper '{program}' failed with exit code {result.returncode}")
    try:
        answer = json.loads(result.stdout)
    except ValueError as exc:
        raise OCIError(f"credential helper '{program}' gave an invalid answer") from exc
    user, secret = str(answer.get("Username", "")), str(answer.get("Secret", ""))
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge:
        scheme, _, rest = header.strip().partition(" ")
        params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
        return cls(scheme.lower(), params)
