"""The registry client's HTTP/1.1 against a server that answers byte by byte what each test
scripts: framing, keep-alive, broken and hostile answers, timeouts, redirects; and proxies,
real ones, in front of the real registry. (The real registry, with TLS, basic and token
auth, is spoken to through it by every other test here.)"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tidegate import oci
from tidegate._http import (
    _URL,
    MAX_HEAD,
    Client,
    ConnectError,
    ProtocolError,
    Proxies,
    ReadTimeout,
    RequestError,
    Response,
    WriteTimeout,
)
from tidegate.oci import OCIError, Reference, Registry
from tidegate.testing._certs import PROXIED_HOST

from .proxy import http_proxy, proxy_environment

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.address = ""


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Server]:
    """A server on 127.0.0.1 running `handler` for every connection it accepts."""
    server = Server()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    server.address = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    async with listener:
        yield server


async def read_request(reader: asyncio.StreamReader, server: Server) -> bytes:
    """One request: its head, and a body of Content-Length or chunked framing."""
    head = await reader.readuntil(b"\r\n\r\n")
    body = b""
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    elif b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
    server.requests.append(head + body)
    return head + body


def answering(*answers: bytes, close: bool = False) -> Callable[[Server], Handler]:
    """A handler answering the requests of a connection with `answers` in turn."""

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in answers:
                await read_request(reader, server)
                writer.write(answer)
                await writer.drain()
            if not close:
                await reader.read()  # until the client hangs up

        return handle

    return make


@asynccontextmanager
async def scripted(make: Callable[[Server], Handler]) -> AsyncIterator[Server]:
    holder: list[Server] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await make(holder[0])(reader, writer)

    async with serve(handler) as server:
        holder.append(server)
        yield server


def client(timeout: float = 5.0) -> Client:
    return Client(ssl.create_default_context, timeout=timeout, proxies=Proxies(None, None))


async def fetch(http: Client, method: str, url: str, **options: Any) -> Response:
    """A request, its answer read whole."""
    response = await http.request(method, url, **options)
    await response.aread()
    return response


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"


async def test_a_connection_is_kept_alive_between_requests() -> None:
    async with scripted(answering(OK, OK, OK)) as server, client() as http:
        answers = [await fetch(http, "GET", f"http://{server.address}/v2/{n}") for n in range(3)]
    assert [a.text for a in answers] == ["hello"] * 3
    assert answers[0].headers["content-type"] == "text/plain"
    assert server.connections == 1
    assert server.requests[2].startswith(b"GET /v2/2 HTTP/1.1\r\n")
    assert f"host: {server.address}".encode() in server.requests[0].lower()


async def test_chunked_answer_is_decoded_and_its_trailers_dropped() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")  # fmt: skip
    async with scripted(answering(chunked, OK)) as server, client() as http:
        first = await fetch(http, "GET", f"http://{server.address}/a")
        second = await fetch(http, "GET", f"http://{server.address}/b")
    assert first.text == "hello world"
    assert second.text == "hello"
    assert server.connections == 1  # the chunked body ended cleanly: the connection is reused


async def test_body_read_to_the_end_of_the_connection() -> None:
    unframed = b"HTTP/1.1 200 OK\r\n\r\nall of it"
    async with scripted(answering(unframed, close=True)) as server, client() as http:
        assert (await fetch(http, "GET", f"http://{server.address}/a")).text == "all of it"
        assert (await fetch(http, "GET", f"http://{server.address}/a")).text == "all of it"
    assert server.connections == 2


async def test_head_and_no_content_answers_have_no_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    empty = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with scripted(answering(head, empty, OK)) as server, client() as http:
        headed = await fetch(http, "HEAD", f"http://{server.address}/a")
        assert headed.headers["content-length"] == "1234"
        assert (await fetch(http, "DELETE", f"http://{server.address}/a")).status_code == 204
        assert (await fetch(http, "GET", f"http://{server.address}/a")).text == "hello"
    assert server.connections == 1


async def test_informational_answers_are_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    async with scripted(answering(answer)) as server, client() as http:
        response = await fetch(http, "PUT", f"http://{server.address}/a", content=b"data")
    assert (response.status_code, response.text) == (200, "hello")


async def test_request_bodies_of_known_and_unknown_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b""
        yield b"second"

    async with scripted(answering(OK, OK)) as server, client() as http:
        await fetch(http, "PUT", f"http://{server.address}/a", content=b"0123456789")
        await fetch(http, "PATCH", f"http://{server.address}/b", content=parts)
    assert server.requests[0].endswith(b"\r\n\r\n0123456789")
    assert b"content-length: 10\r\n" in server.requests[0].lower()
    assert b"transfer-encoding: chunked\r\n" in server.requests[1].lower()
    assert server.requests[1].endswith(b"\r\n\r\nfirst,second")  # decoded by the server


async def test_a_server_closing_an_idle_connection_costs_no_request() -> None:
    # Each connection answers one request, then the server closes it while it sits idle.
    async with scripted(answering(OK, close=True)) as server, client() as http:
        first = await fetch(http, "GET", f"http://{server.address}/a")
        await asyncio.sleep(0.05)
        second = await fetch(http, "GET", f"http://{server.address}/a")
    assert (first.text, second.text) == ("hello", "hello")
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "after 9 of 100 body bytes"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header line"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "invalid Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n", "line end"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhel",
            "closed in the middle of a chunk",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "protocol switch"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD + 10), "larger than"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 300 + b"\r\n", "more than 256"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed in the middle of the response head"),
        (b"", "closed the connection without answering"),
    ],
)
async def test_broken_answers_are_protocol_errors(answer: bytes, error: str) -> None:
    async with scripted(answering(answer, close=True)) as server, client() as http:
        with pytest.raises(ProtocolError, match=error):
            await fetch(http, "GET", f"http://{server.address}/a")


async def test_a_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with serve(silent) as server, client(timeout=0.3) as http:
        with pytest.raises(ReadTimeout):
            await fetch(http, "GET", f"http://{server.address}/a")


async def test_a_body_that_stops_coming_times_out() -> None:
    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await reader.read()

    async with serve(stalling) as server, client(timeout=0.3) as http:
        with pytest.raises(ReadTimeout):
            await fetch(http, "GET", f"http://{server.address}/a")


async def test_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with client() as http:
        with pytest.raises(ConnectError, match="refused"):
            await fetch(http, "GET", f"http://127.0.0.1:{port}/a")


async def test_header_values_cannot_inject_lines() -> None:
    async with scripted(answering(OK)) as server, client() as http:
        injected = {"X-A": "b\r\nX-Injected: 1"}
        with pytest.raises(RequestError, match="line break"):
            await fetch(http, "GET", f"http://{server.address}/a", headers=injected)
    assert not any(b"x-injected" in r.lower() for r in server.requests)


async def test_registry_errors_name_the_blob_when_the_body_is_cut_short(tmp_path: Path) -> None:
    """A registry announcing a layer and hanging up halfway: the pull fails with the blob's
    digest named, and nothing reaches the output folder."""
    layer = "sha256:" + "ab" * 32
    manifest = (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                b'"config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":'
                b'"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",'
                b'"size":2},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip",'
                b'"digest":"' + layer.encode() + b'","size":1000}]}')  # fmt: skip

    async def registry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"/manifests/" in head:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image."
                             b"manifest.v1+json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(manifest), manifest))  # fmt: skip
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"\x1f" * 300)
                await writer.drain()
                return

    async with (
        serve(registry) as server,
        Registry(server.address, insecure=True, retries=0, docker_config=False) as c,
    ):
        with pytest.raises(OCIError, match=f"failed to download blob {layer}"):
            await oci.pull(c, Reference.parse(f"{server.address}/app:v1"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left behind


@pytest.mark.registry
async def test_a_registry_reached_only_through_the_http_proxy(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`registry.test` resolves nowhere: the pull works only because `HTTP_PROXY` is used,
    and the proxy gets the credentials written in it."""
    app = Path(__file__).parent / "testdata" / "app" / "base"
    async with Registry(registry, insecure=True, docker_config=False) as direct:
        pushed = await oci.push(direct, Reference.parse(f"{registry}/proxied/app:v1"), app)
    port = registry.rpartition(":")[2]
    name = f"{PROXIED_HOST}:{port}"
    with http_proxy({name: registry}, user="ci:p@ss word") as proxy:
        address = proxy.url.replace("://", "://ci:p%40ss%20word@")
        proxy_environment(monkeypatch, HTTP_PROXY=address, NO_PROXY="example.com")
        async with Registry(name, insecure=True, docker_config=False) as proxied:
            pulled = await oci.pull(proxied, Reference.parse(f"{name}/proxied/app:v1"),
                                    tmp_path / "out")  # fmt: skip
    assert pulled.digest == pushed.digest
    assert (tmp_path / "out" / "kustomization.yaml").read_bytes() == (
        app / "kustomization.yaml"
    ).read_bytes()
    assert f"GET http://{name}/v2/proxied/app/manifests/v1" in proxy.seen
    assert any("/blobs/sha256:" in line for line in proxy.seen)
    assert set(proxy.credentials) == {"ci:p@ss word"}


@pytest.mark.registry
async def test_a_proxy_refusing_the_credentials_is_reported_without_them(
    registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{PROXIED_HOST}:{registry.rpartition(':')[2]}"
    with http_proxy({name: registry}, user="ci:right") as proxy:
        proxy_environment(monkeypatch, HTTP_PROXY=proxy.url.replace("://", "://ci:wrong@"))
        async with Registry(name, insecure=True, retries=0, docker_config=False) as proxied:
            with pytest.raises(oci.RegistryError, match="Proxy Authentication Required") as caught:
                await proxied.fetch_manifest(Reference.parse(f"{name}/proxied/app:v1"))
    assert caught.value.status == 407
    assert "wrong" not in str(caught.value)
    assert proxy.credentials == ["ci:wrong"]


@pytest.mark.parametrize(
    ("url", "no_proxy", "proxied"),
    [
        ("http://registry.test:5000/v2/", "", True),
        ("http://127.0.0.1:5000/v2/", "", False),  # loopback never goes through a proxy
        ("http://localhost:5000/v2/", "", False),
        ("http://[::1]:5000/v2/", "", False),
        ("http://registry.test/v2/", "*", False),
        ("http://registry.test/v2/", "example.com, registry.test", False),
        ("http://registry.test/v2/", "test", False),  # a domain covers its subdomains
        ("http://notregistry.test/v2/", "registry.test", True),
        ("http://registry.test/v2/", ".registry.test", True),  # only subdomains
        ("http://eu.registry.test/v2/", ".registry.test", False),
        ("http://registry.test/v2/", "*.registry.test", True),
        ("http://eu.registry.test/v2/", "*.registry.test", False),
        ("http://registry.test:5000/v2/", "registry.test:5001", True),
        ("http://registry.test:5000/v2/", "registry.test:5000", False),
        ("http://10.1.2.3/v2/", "10.0.0.0/8", False),
        ("http://11.1.2.3/v2/", "10.0.0.0/8", True),
        ("http://10.1.2.3:5000/v2/", "10.1.2.3", False),
        ("http://[2001:db8::1]:5000/v2/", "2001:db8::/32", False),
        ("http://[2001:db8::1]:5000/v2/", "[2001:db8::1]:5000", False),
        ("https://registry.test/v2/", "", False),  # no HTTPS_PROXY
    ],
)
def test_which_urls_go_through_the_proxy(url: str, no_proxy: str, proxied: bool) -> None:
    proxies = Proxies("http://proxy.test:3128", None, no_proxy)
    assert (proxies.select(_URL(url)) is not None) is proxied


def test_proxy_variables_are_read_as_go_reads_them() -> None:
    found = Proxies.from_environment(
        {"HTTP_PROXY": "upper:3128", "http_proxy": "lower:3128", "ALL_PROXY": "socks5://s:1080"}
    )
    http = found.select(_URL("http://registry.test/"))
    assert http is not None
    assert (http.host, http.port) == ("upper", 3128)  # no scheme: http://; upper-case first
    assert found.select(_URL("https://registry.test/")) is None  # ALL_PROXY is not read


async def test_a_proxy_scheme_that_is_not_supported_is_an_error_that_says_so() -> None:
    proxies = Proxies(None, "socks5://proxy.test:1080")
    async with Client(ssl.create_default_context, proxies=proxies) as http:
        with pytest.raises(RequestError, match="proxy scheme 'socks5' is not supported"):
            await http.request("GET", "https://registry.test/v2/")


async def test_a_redirect_to_another_host_does_not_carry_the_authorization() -> None:
    async with scripted(answering(OK)) as store:
        moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://%s/blob?sig=x\r\n" % (
            store.address.encode()
        )
        async with (
            scripted(answering(moved + b"Content-Length: 0\r\n\r\n")) as origin,
            client() as http,
        ):
            response = await fetch(http, "GET", f"http://{origin.address}/v2/a/blobs/b",
                                   headers={"Authorization": "Bearer secret"})  # fmt: skip
    assert response.text == "hello"
    assert b"authorization: bearer secret" in origin.requests[0].lower()
    assert store.requests[0].startswith(b"GET /blob?sig=x HTTP/1.1\r\n")
    assert b"authorization" not in store.requests[0].lower()


async def test_a_redirect_on_the_same_host_keeps_it_and_its_connection() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: /other\r\nContent-Length: 4\r\n\r\nmove"
    seen_other = b"HTTP/1.1 303 See Other\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n"
    async with scripted(answering(moved, seen_other, OK)) as server, client() as http:
        response = await fetch(http, "PUT", f"http://{server.address}/start", content=b"data",
                               headers={"Authorization": "Basic abc"})  # fmt: skip
    assert response.text == "hello"
    assert server.connections == 1
    # 302 keeps a PUT a PUT, with its body; 303 turns it into a GET without one.
    assert server.requests[1].startswith(b"PUT /other HTTP/1.1\r\n")
    assert server.requests[1].endswith(b"\r\n\r\ndata")
    assert server.requests[2].startswith(b"GET /final HTTP/1.1\r\n")
    assert b"content-length" not in server.requests[2].lower()
    assert all(b"authorization: basic abc" in r.lower() for r in server.requests)


async def test_endless_redirects_end_in_an_error() -> None:
    again = b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"
    async with scripted(answering(*[again] * 30)) as server, client() as http:
        with pytest.raises(RequestError, match="more than 20 redirects"):
            await http.request("GET", f"http://{server.address}/start")
    assert len(server.requests) == 21


def endless(head: bytes, seen: list[bytes]) -> Handler:
    """Answer `head`, then chunked data for as long as the client reads it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"{" * (1 << 16)
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()

    return handle


async def test_an_endless_manifest_is_refused_at_the_limit() -> None:
    seen: list[bytes] = []
    manifest = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    async with (
        serve(endless(manifest, seen)) as server,
        Registry(server.address, insecure=True, retries=0, docker_config=False) as client,
    ):
        with pytest.raises(OCIError, match=r"answer exceeds 4194304 bytes"):
            await client.fetch_manifest(Reference.parse(f"{server.address}/app:v1"))
    assert b"accept-encoding: identity\r\n" in seen[0].lower()


async def test_an_endless_error_page_still_gives_the_status() -> None:
    async with (
        serve(endless(b"HTTP/1.1 404 Not Found\r\n", [])) as server,
        Registry(server.address, insecure=True, retries=0, docker_config=False) as client,
    ):
        with pytest.raises(oci.NotFound, match="app:v1': Not Found") as caught:
            await client.fetch_manifest(Reference.parse(f"{server.address}/app:v1"))
    assert caught.value.status == 404


async def test_a_compressed_answer_not_asked_for_is_refused() -> None:
    body = gzip.compress(b"{}" * 1000)
    gzipped = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    async with (
        scripted(answering(gzipped, close=True)) as server,
        Registry(server.address, insecure=True, retries=0, docker_config=False) as client,
    ):
        with pytest.raises(OCIError, match="Content-Encoding 'gzip', not asked for"):
            await client.fetch_manifest(Reference.parse(f"{server.address}/app:v1"))


def slow_reader(
    pause: float, stop_after: int | None = None, reads: list[int] | None = None
) -> Handler:
    """Reads a request body with a pause after each read (and stops reading
    after `stop_after` bytes), then answers OK."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        left = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        taken = 0
        while left:
            if stop_after is not None and taken >= stop_after:
                await asyncio.sleep(3600)
            data = await reader.read(min(left, 1 << 20))
            left -= len(data)
            taken += len(data)
            if reads is not None:
                reads.append(len(data))
            await asyncio.sleep(pause)
        writer.write(OK)
        await writer.drain()
        await reader.read()

    return handle


async def test_the_write_timeout_applies_to_each_write_not_the_whole_upload() -> None:
    body = b"x" * (24 << 20)  # beyond what the sockets buffer, so writes wait for the reader
    reads: list[int] = []
    async with serve(slow_reader(0.01, reads=reads)) as server, client(timeout=0.5) as http:
        response = await fetch(http, "PUT", f"http://{server.address}/upload", content=body)
    assert response.text == "hello"
    assert sum(reads) == len(body)
    # The server paused after every read: the upload outlasted the timeout, and was not cut off.
    assert len(reads) * 0.01 > 0.5


async def test_an_upload_the_server_stops_reading_times_out() -> None:
    body = b"x" * (24 << 20)
    async with serve(slow_reader(0, stop_after=1 << 20)) as server, client(timeout=0.5) as http:
        with pytest.raises(WriteTimeout):
            await fetch(http, "PUT", f"http://{server.address}/upload", content=body)
