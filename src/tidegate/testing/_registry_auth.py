"""OCI registries that require authentication, to test the OCI client's auth paths.

distribution offers two schemes: htpasswd (HTTP basic on every request) and Docker's token
scheme, where the registry answers 401 with a `Bearer` challenge naming a token service, and
accepts JWTs that service signed with a key whose certificate is in its `rootcertbundle`.
`htpasswd_auth` and `TokenServer` give the registry config's `auth:` section for each;
`start_registry` runs a registry with it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import secrets
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ._certs import _cert
from ._environment import StartError, _die_with_parent, _free_ports, _tail, registry_config

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
REALM = "tidegate-test"
TOKEN_LIFETIME = 300
_START_ATTEMPTS = 3


def htpasswd_auth(folder: Path, username: str, password: str) -> dict[str, Any]:
    """Write an htpasswd file for one user; return the registry's `auth:` section for it."""
    # distribution compares with golang.org/x/crypto/bcrypt, which takes $2a$, $2b$ and $2y$.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "htpasswd"
    path.write_text(f"{username}:{hashed}\n")
    return {"htpasswd": {"realm": REALM, "path": str(path)}}


@dataclass(frozen=True)
class TokenRequest:
    """One request the token service received; `granted` is true when it issued the scopes."""

    username: str | None
    service: str
    scopes: list[str]
    granted: bool


class TokenServer:
    """A Docker registry token service on 127.0.0.1, signing ES256 JWTs for `users`.

    Valid basic credentials get every scope they ask for, a request without credentials gets a
    token with no access (as Docker Hub's service does), wrong credentials get 401.
    """

    def __init__(
        self,
        folder: Path,
        users: dict[str, str],
        service: str = "tidegate-test-registry",
        issuer: str = "tidegate-test-issuer",
    ) -> None:
        self.users = dict(users)
        self.service = service
        self.issuer = issuer
        self.requests: list[TokenRequest] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        signer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidegate-test-token-signer")])
        certificate = _cert(signer, self._key, signer, self._key)
        self._certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        folder.mkdir(parents=True, exist_ok=True)
        self.rootcertbundle = folder / "token-signer.crt"
        self.rootcertbundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._http: _TokenHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        """URL of the `/token` endpoint, as the registry's challenge names it."""
        if self._http is None:
            raise RuntimeError("token server not started")
        return f"http://127.0.0.1:{self._http.server_address[1]}/token"

    def auth_config(self) -> dict[str, Any]:
        """The registry's `auth:` section that trusts this service."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.rootcertbundle),
            }
        }

    def start(self) -> None:
        self._http = _TokenHTTPServer(("127.0.0.1", 0), _TokenHandler, self)
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="tidegate-token-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> TokenServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def issue(self, username: str | None, scopes: list[str]) -> str:
        """A signed token for `username`, granting `scopes` (none when anonymous)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [] if username is None else _access(scopes),
        }
        # distribution verifies the x5c chain against rootcertbundle; a self-signed leaf that is
        # itself in the bundle passes.
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._certificate_der).decode()],
        }
        signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        # JWS wants ES256 signatures as raw r||s, not the DER that cryptography produces.
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _answer(self, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and JSON body for a GET of the token endpoint."""
        service = query.get("service", [""])[0]
        scopes = [scope for value in query.get("scope", []) for scope in value.split()]
        if authorization is None:
            self.requests.append(TokenRequest(None, service, scopes, granted=False))
            return 200, self._token_body(None, scopes)
        username = _check_basic(authorization, self.users)
        if username is None:
            self.requests.append(
                TokenRequest(_basic_username(authorization), service, scopes, granted=False)
            )
            error = {"code": "UNAUTHORIZED", "message": "invalid username or password"}
            return 401, {"errors": [error]}
        self.requests.append(TokenRequest(username, service, scopes, granted=True))
        return 200, self._token_body(username, scopes)

    def _token_body(self, username: str | None, scopes: list[str]) -> dict[str, Any]:
        token = self.issue(username, scopes)
        issued_at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        return {
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "issued_at": issued_at,
        }


class _TokenHTTPServer(ThreadingHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tokens: TokenServer,
    ) -> None:
        self.tokens = tokens
        super().__init__(address, handler)


class _TokenHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._send(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
            return
        assert isinstance(self.server, _TokenHTTPServer)
        # `account` and any other parameter are accepted and ignored.
        query = parse_qs(url.query)
        status, body = self.server.tokens._answer(self.headers.get("Authorization"), query)
        self._send(status, body)

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 401:
            self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the recorded `TokenServer.requests` say what tests need to know.
        pass


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def _basic_username(authorization: str) -> str | None:
    credentials = _basic_credentials(authorization)
    return credentials[0] if credentials else None


def _check_basic(authorization: str, users: dict[str, str]) -> str | None:
    """The user whose basic credentials `authorization` carries, if they are right."""
    credentials = _basic_credentials(authorization)
    if credentials is None:
        return None
    username, password = credentials
    expected = users.get(username)
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        return None
    return username


def _access(scopes: list[str]) -> list[dict[str, Any]]:
    """The token's `access` claim granting `TYPE:NAME:ACTIONS` scopes (NAME may hold ':')."""
    granted = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind and name and actions:
            granted.append({"type": kind, "name": name, "actions": actions.split(",")})
    return granted


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def start_registry(
    folder: Path, auth: dict[str, Any] | None, tls: dict[str, Any] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start distribution with `auth` (and `http.tls`) on a free port; return it and its
    `127.0.0.1:PORT`.

    Waits until `/v2/` answers (401 counts; with TLS, until the port accepts connections); the
    caller terminates the process. Raises
    `StartError` with the tail of the registry's log if it exits or does not answer in 20 s.
    """
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    log_path = folder / "registry.log"
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = _free_ports(1)[0]
        settings = registry_config(folder / "data", port, secrets.token_hex(16), auth)
        if tls:
            settings["http"]["tls"] = tls
        config.write_text(yaml.safe_dump(settings))
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(REGISTRY_BINARY), "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            failure = _wait_answering(process, port, timeout=20, tls=bool(tls))
        except BaseException:
            _kill(process)
            raise
        if failure is None:
            return process, f"127.0.0.1:{port}"
        _kill(process)
        tail = _tail(log_path)
        if "address already in use" not in tail or attempt == _START_ATTEMPTS:
            raise StartError(f"registry {failure}; last lines of {log_path}:\n{tail}")
    raise StartError(f"registry: no free port after {_START_ATTEMPTS} attempts")


def _wait_answering(
    process: subprocess.Popen[bytes], port: int, *, timeout: float, tls: bool = False
) -> str | None:
    """None once `/v2/` answers at all (any status), else why the registry is not there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode} while starting"
        try:
            if tls:
                socket.create_connection(("127.0.0.1", port), timeout=2.0).close()
            else:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2.0)
        except (httpx.HTTPError, OSError):
            time.sleep(0.1)
            continue
        return None
    return f"did not answer on 127.0.0.1:{port} within {timeout:.0f}s"


def stop_registry(process: subprocess.Popen[bytes]) -> None:
    """Stop a registry `start_registry` started: TERM, then KILL after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill(process)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
