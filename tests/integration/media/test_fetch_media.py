"""`fetch_media` against a real HTTP server on 127.0.0.1, started by the test."""

from __future__ import annotations

import functools
import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from sogni_intelligence.media import fetch
from sogni_intelligence.media.fetch import FetchError, FetchPolicy, fetch_media
from sogni_intelligence.media.signing import UrlSigner
from sogni_intelligence.media.store import AssetStore
from sogni_intelligence.store.db import Database
from tests.integration.media.conftest import make_png

PNG = make_png()
HUGE = 256 * 1024
CAP = 64 * 1024


@dataclass
class Seen:
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]


class Handler(BaseHTTPRequestHandler):
    seen: Seen

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        with self.seen.lock:
            self.seen.requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        if path == "/image.png":
            self._send(200, PNG, "image/png")
        elif path == "/png-labelled-text":
            self._send(200, PNG, "text/plain")
        elif path == "/text.txt":
            self._send(200, b"just some words, not media\n" * 10, "text/plain")
        elif path == "/huge":
            self._send(200, PNG[:64] + b"\0" * HUGE, "image/png")
        elif path == "/huge-stream":
            # no Content-Length: the body ends when the connection closes (HTTP/1.0 style)
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self.wfile.write(PNG[:64])
                for _ in range(HUGE // 4096):
                    self.wfile.write(b"\0" * 4096)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/slow":
            time.sleep(2)
            self._send(200, PNG, "image/png")
        elif path == "/redirect":
            self._redirect(query["to"][0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/chain/{left - 1}" if left > 0 else "/image.png")
        else:
            self._send(404, b"not here", "text/plain")


@dataclass
class Server:
    port: int
    seen: Seen

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    seen = Seen()
    handler = type("BoundHandler", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def policy(**changes: object) -> FetchPolicy:
    base: dict[str, object] = {
        "own_base_url": "https://media.example.test",
        "allow_hosts": frozenset({"127.0.0.1"}),
        "timeout_s": 10.0,
        "max_redirects": 5,
        "max_bytes": CAP,
    }
    return FetchPolicy(**{**base, **changes})  # type: ignore[arg-type]


async def _refused(url: str, guard: FetchPolicy, status: int = 400, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch_media(url, policy=guard, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status, caught.value.message
    return caught.value


# --- the guard --------------------------------------------------------------------------------


async def test_loopback_is_refused_by_default(server: Server) -> None:
    before = len(server.seen.paths())
    guard = policy(allow_hosts=frozenset())
    error = await _refused(server.url("/image.png"), guard)
    assert error.code == "media_url_blocked" and "loopback" in error.message
    error = await _refused(server.url("/image.png", host="localhost"), guard)
    assert error.code == "media_url_blocked"
    assert len(server.seen.paths()) == before  # no connection was made


async def test_allow_listed_host_is_fetched(server: Server) -> None:
    fetched = await fetch_media(server.url("/image.png"), policy=policy())
    assert fetched.data == PNG
    assert fetched.sniffed.mime == "image/png" and fetched.sniffed.kind == "image"
    assert fetched.final_url == server.url("/image.png")
    assert fetched.asset is None


async def test_named_host_is_pinned_and_keeps_its_host_header(server: Server) -> None:
    # localhost may resolve to ::1 first, where nothing listens: the next vetted address is used
    fetched = await fetch_media(
        server.url("/image.png?via=name", host="localhost"),
        policy=policy(allow_hosts=frozenset({"localhost"})),
    )
    assert fetched.data == PNG
    with server.seen.lock:
        hosts = [host for path, host in server.seen.requests if path == "/image.png?via=name"]
    assert hosts == [f"localhost:{server.port}"]


async def test_type_is_sniffed_from_the_bytes(server: Server) -> None:
    fetched = await fetch_media(server.url("/png-labelled-text"), policy=policy())
    assert fetched.sniffed.mime == "image/png"
    error = await _refused(server.url("/text.txt"), policy())
    assert error.code == "media_type_unsupported"
    error = await _refused(server.url("/image.png"), policy(), kinds=("video", "audio"))
    assert error.code == "media_type_unsupported" and "image/png" in error.message


async def test_size_cap_with_and_without_content_length(server: Server) -> None:
    error = await _refused(server.url("/huge"), policy(), 413)
    assert error.code == "media_too_large"
    error = await _refused(server.url("/huge-stream"), policy(), 413)
    assert error.code == "media_too_large"
    fetched = await fetch_media(server.url("/huge"), policy=policy(max_bytes=HUGE + 1024))
    assert len(fetched.data) == HUGE + 64


async def test_timeout_is_504(server: Server) -> None:
    started = time.monotonic()
    error = await _refused(server.url("/slow"), policy(timeout_s=0.5), 504)
    assert error.code == "media_fetch_timeout"
    assert time.monotonic() - started < 1.9


async def test_http_error_status_is_400(server: Server) -> None:
    error = await _refused(server.url("/missing"), policy())
    assert "404" in error.message


# --- redirects --------------------------------------------------------------------------------


async def test_redirects_are_followed_up_to_the_limit(server: Server) -> None:
    fetched = await fetch_media(server.url("/chain/2"), policy=policy(max_redirects=3))
    assert fetched.data == PNG
    assert fetched.final_url == server.url("/image.png")
    error = await _refused(server.url("/chain/2"), policy(max_redirects=2))
    assert error.code == "media_too_many_redirects"
    error = await _refused(server.url("/chain/0"), policy(max_redirects=0))
    assert error.code == "media_too_many_redirects"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/image.png",  # loopback, but not the allow-listed host
        "http://10.0.0.1/image.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/image.png",
        "http://localhost:{port}/image.png",
    ],
)
async def test_redirect_to_a_private_address_is_refused_at_the_hop(
    server: Server, target: str
) -> None:
    location = target.format(port=server.port)
    before = len(server.seen.paths())
    error = await _refused(server.url(f"/redirect?to={location}"), policy())
    assert error.code == "media_url_blocked", error.message
    assert len(server.seen.paths()) == before + 1  # only the redirecting request was made


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "ftp://example.com/a.png", "http://user:pw@example.com/"]
)
async def test_redirect_to_a_bad_scheme_is_refused(server: Server, target: str) -> None:
    error = await _refused(server.url(f"/redirect?to={target}"), policy())
    assert error.code == "media_url_invalid"


# --- our own media URLs -----------------------------------------------------------------------

OWN_BASE = "http://127.0.0.1:9"  # nothing listens there: any HTTP attempt would fail


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[AssetStore]:
    db = Database(f"sqlite:///{tmp_path / 'fetch.sqlite'}")
    await db.create_all()
    yield AssetStore(db, tmp_path / "media", UrlSigner(b"s" * 32, OWN_BASE, 3600))
    await db.close()


async def test_own_signed_url_is_served_from_the_store(store: AssetStore) -> None:
    record = await store.put_bytes("key_owner", PNG)
    guard = policy(own_base_url=OWN_BASE, allow_hosts=frozenset())
    fetched = await fetch_media(store.url(record), policy=guard, store=store)
    assert fetched.data == PNG
    assert fetched.asset is not None and fetched.asset.id == record.id
    assert fetched.sniffed.mime == "image/png"

    # without the store the same URL goes over HTTP (own origin is let through) and fails
    error = await _refused(store.url(record), guard)
    assert error.code == "media_fetch_failed"


async def test_own_url_needs_a_valid_signature_or_the_owner(store: AssetStore) -> None:
    record = await store.put_bytes("key_owner", PNG)
    guard = policy(own_base_url=OWN_BASE, allow_hosts=frozenset())
    signed = store.url(record)
    tampered = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    await _refused(tampered, guard, store=store)
    expired = store.signer.url(f"/v1/media/{record.id}", ttl_s=-5)
    await _refused(expired, guard, store=store)
    unsigned = f"{OWN_BASE}/v1/media/{record.id}"
    await _refused(unsigned, guard, store=store)
    await _refused(unsigned, guard, store=store, owner="key_other")
    fetched = await fetch_media(unsigned, policy=guard, store=store, owner="key_owner")
    assert fetched.data == PNG
    await _refused(f"{OWN_BASE}/v1/media/..%2F..%2Fetc%2Fpasswd", guard, store=store)
    # the size cap and the kinds apply to stored media too
    await _refused(signed, policy(own_base_url=OWN_BASE, max_bytes=len(PNG) - 1), 413, store=store)
    await _refused(signed, guard, store=store, kinds=("audio",))


# --- https: the connection goes to the vetted IP, the certificate is checked for the name -----


@dataclass
class TlsServer:
    port: int
    seen: Seen
    ca: Path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=media.local", "-addext", "subjectAltName=DNS:media.local"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    seen = Seen()
    handler = type("TlsHandler", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsServer(httpd.server_address[1], seen, cert)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def trust_test_ca(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients made by fetch_media trust the test certificate; names resolve to 127.0.0.1."""
    context = ssl.create_default_context(cafile=str(tls_server.ca))
    monkeypatch.setattr(httpx, "AsyncClient", functools.partial(httpx.AsyncClient, verify=context))

    async def resolve(host: str, port: int) -> list[ipaddress.IPv4Address]:
        return [ipaddress.IPv4Address("127.0.0.1")]

    monkeypatch.setattr(fetch, "resolve_host", resolve)


async def test_https_is_pinned_to_the_ip_and_verified_for_the_name(
    tls_server: TlsServer, trust_test_ca: None
) -> None:
    guard = policy(allow_hosts=frozenset({"media.local", "wrong.local"}))
    fetched = await fetch_media(f"https://media.local:{tls_server.port}/image.png", policy=guard)
    assert fetched.data == PNG
    with tls_server.seen.lock:
        assert tls_server.seen.requests[-1] == ("/image.png", f"media.local:{tls_server.port}")
    # the same IP under a name the certificate does not carry fails verification
    error = await _refused(f"https://wrong.local:{tls_server.port}/image.png", guard)
    assert error.code == "media_fetch_failed"
    # and without the allow-list entry the name's private address is refused before connecting
    error = await _refused(f"https://media.local:{tls_server.port}/image.png", policy())
    assert error.code == "media_url_blocked"
