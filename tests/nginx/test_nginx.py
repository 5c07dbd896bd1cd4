"""nginx/comfy-workshop.conf, checked by a real nginx.

The site file is parsed (tests/support/nginx.py) to assert what cannot be waited for in a test
(a 12 h socket timeout, a long poll beyond nginx's default 60 s), then rendered by
`render_site` with only the upstream, the listen ports, the certificate and the ACME webroot
swapped, and run by an nginx
we start as ourselves under tmp_path, in front of a small uvicorn app (or the real queue
manager) on a free port. Every request below goes through that nginx over HTTPS (or HTTP for
the redirect), with the generated certificate verified.

Skipped, with the reason, only where no nginx binary is installed (CI installs one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import socket
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from queue_manager.cli.redis_server import RedisServer
from queue_manager.deploy.nginx_site import EXAMPLE, render_site
from queue_manager.settings import Settings
from tests.support.nginx import (
    SITE_CONF,
    Directive,
    Nginx,
    Ports,
    effective,
    free_port,
    http_server,
    https_server,
    location_for,
    parse,
    proxy_headers,
    seconds,
    single,
    site_variant,
    size,
)
from tests.support.servers import serve
from tests.support.settings import make_settings

MiB = 2**20
PUBLIC_HOST = "workshop.example.org"  # what a browser on the standard port 443 sends as Host
WAIT = 10.0  # seconds: generous bound for things that happen "at once"


# --- What the file says (no nginx needed) ----------------------------------------------------


@pytest.fixture(scope="module")
def site() -> list[Directive]:
    return parse(SITE_CONF.read_text())


@pytest.fixture(scope="module")
def tls_server(site: list[Directive]) -> Directive:
    return https_server(site)


def test_the_committed_site_is_the_rendering_of_the_documented_example() -> None:
    assert SITE_CONF.read_text() == render_site(EXAMPLE), (
        "nginx/comfy-workshop.conf differs from render_site(EXAMPLE): render it again with "
        "`comfy-workshop nginx-site --domain workshop.example.org --no-check "
        "--out nginx/comfy-workshop.conf` (edit the renderer, not the file)"
    )


def test_the_production_values_to_edit_are_the_documented_placeholders(
    site: list[Directive],
) -> None:
    (upstream,) = [d for d in site if d.name == "upstream"]
    assert upstream.child("server").args == ["127.0.0.1:8188"]
    for server in (http_server(site), https_server(site)):
        assert server.child("server_name").args == [PUBLIC_HOST]
    tls = https_server(site)
    assert sorted(d.args[0] for d in tls.children("listen")) == ["443", "[::]:443"]
    assert all({"ssl", "http2"} <= set(d.args) for d in tls.children("listen"))
    assert "/etc/letsencrypt/live/" in tls.child("ssl_certificate").args[0]


def test_every_proxied_path_keeps_host_and_forwarding_headers(tls_server: Directive) -> None:
    paths = ["/user001/", "/user001/api/prompt", "/user001/ws", "/admin/ws", "/admin/",
             "/worker/v1/claim", "/user001/api/view", "/metrics", "/login", "/healthz"]  # fmt: skip
    for path in paths:
        assert location_for(tls_server, path).children("proxy_pass"), path
        headers = proxy_headers(tls_server, path)
        # Host is what the app compares Origin with; a location that sets any header of its
        # own and forgets these would silently drop them.
        assert headers["host"] == "$host", path
        assert headers["x-forwarded-proto"] == "$scheme", path
        assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for", path
        assert headers["x-real-ip"] == "$remote_addr", path
        assert single(tls_server, path, "proxy_http_version") == "1.1", path
        assert single(tls_server, path, "proxy_max_temp_file_size") == "0", path


def test_sockets_upgrade_and_stay_open_for_hours(
    site: list[Directive], tls_server: Directive
) -> None:
    (upgrade_map,) = [d for d in site if d.name == "map"]
    assert upgrade_map.args[0] == "$http_upgrade"
    variable = upgrade_map.args[1]
    assert {d.name.strip("'\""): d.values for d in upgrade_map.block or ()} == {
        "default": ["upgrade"],
        "": ["close"],
    }
    for path in ("/user001/ws", "/user042/ws", "/admin/ws"):
        headers = proxy_headers(tls_server, path)
        assert headers["upgrade"] == "$http_upgrade"
        assert headers["connection"] == variable
        assert seconds(single(tls_server, path, "proxy_read_timeout") or "60s") >= 3600
        assert seconds(single(tls_server, path, "proxy_send_timeout") or "60s") >= 3600
    # Ordinary requests keep upstream keepalive: no Upgrade, an empty Connection.
    assert "upgrade" not in proxy_headers(tls_server, "/user001/api/queue")
    assert proxy_headers(tls_server, "/user001/api/queue")["connection"] == ""


def test_the_worker_long_poll_outlasts_the_claim_wait(tls_server: Directive) -> None:
    """nginx cuts a response that sends nothing for proxy_read_timeout (default 60 s)."""
    claim_wait = Settings.model_fields["claim_wait_seconds"].default
    read_timeout = seconds(single(tls_server, "/worker/v1/claim", "proxy_read_timeout") or "60")
    assert read_timeout > 60
    assert read_timeout >= 2 * claim_wait
    # Ordinary pages keep the default: a hung app request is not held for minutes.
    assert single(tls_server, "/user001/api/prompt", "proxy_read_timeout") is None


def test_bodies_limits_and_streaming(tls_server: Directive) -> None:
    max_upload = Settings.model_fields["max_upload_bytes"].default
    limit = single(tls_server, "/user001/api/upload/image", "client_max_body_size")
    participant_limit = size(limit or "1m")  # nginx's default is 1m
    assert max_upload < participant_limit <= max_upload * 1.25  # "a bit above" the app's own
    for path in ("/worker/v1/jobs/x/outputs", "/worker/v1/jobs/x/files/outputs"):
        assert single(tls_server, path, "client_max_body_size") == "0"
        assert single(tls_server, path, "proxy_request_buffering") == "off"
        assert single(tls_server, path, "proxy_buffering") == "off"
    for path in ("/user001/api/view", "/user001/view"):
        assert single(tls_server, path, "proxy_buffering") == "off"


def test_security_headers_are_set_once_and_inherited_everywhere(tls_server: Directive) -> None:
    headers = {v[0].lower(): v[1:] for v in effective(tls_server, "/user001/", "add_header")}
    assert headers["x-content-type-options"] == ["nosniff", "always"]
    assert "referrer-policy" in headers
    assert "content-security-policy" not in headers  # would break the ComfyUI page
    # nginx drops inherited add_header in a location that has one of its own.
    assert not any(loc.children("add_header") for loc in tls_server.children("location"))
    assert tls_server.child("server_tokens").args == ["off"]


def test_plain_http_only_redirects(site: list[Directive]) -> None:
    plain = http_server(site)
    assert location_for(plain, "/user001/").child("return").args == [
        "301",
        "https://$host$request_uri",
    ]
    assert not any(loc.children("proxy_pass") for loc in plain.children("location"))


# --- A real nginx ----------------------------------------------------------------------------


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    """Verifies nginx's certificate (for 127.0.0.1) against the one we generated."""
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
def nginx(nginx_bin: str, tls_files: tuple[Path, Path], tmp_path: Path) -> Iterator[Nginx]:
    """Configured (not started): free loopback ports, everything under tmp_path."""
    ports = Ports(http=free_port(), https=free_port(), upstream=free_port())
    acme = tmp_path / "acme"
    (acme / ".well-known" / "acme-challenge").mkdir(parents=True)
    cert, key = tls_files
    site = site_variant(ports, cert, key, acme)
    server = Nginx(nginx_bin, tmp_path / "nginx", site, ports)
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def running(nginx: Nginx, app: object) -> AsyncIterator[None]:
    async with serve(app, nginx.ports.upstream):
        await asyncio.to_thread(nginx.start)
        try:
            yield
        finally:
            await asyncio.to_thread(nginx.stop)


def test_nginx_accepts_the_config(nginx: Nginx) -> None:
    result = nginx.check()
    output = result.stderr + nginx.logs()
    assert result.returncode == 0, output
    assert "test is successful" in output
    unexpected = [
        line
        for line in output.splitlines()
        if ("[warn]" in line or "[emerg]" in line or "[alert]" in line)
        # nginx 1.25.1+ prefers `http2 on;`, which older ones (Debian 12: 1.22) reject.
        and "http2" not in line
    ]
    assert not unexpected, output


# --- The upstream: records what nginx passed on ----------------------------------------------


def pattern(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """`total` bytes of incompressible, position-dependent data, `chunk` at a time."""
    base = random.Random(0).randbytes(chunk)
    for i, start in enumerate(range(0, total, chunk)):
        yield (i.to_bytes(8, "big") + base[8:])[: min(chunk, total - start)]


def sha256_of(total: int) -> str:
    digest = hashlib.sha256()
    for part in pattern(total):
        digest.update(part)
    return digest.hexdigest()


@dataclass
class Upstream:
    """A tiny stand-in for the queue manager that tells what it received, and when."""

    seen: list[dict[str, object]] = field(default_factory=list)
    first_bytes: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    upload_ended: defaultdict[str, asyncio.Event] = field(
        default_factory=lambda: defaultdict(asyncio.Event)
    )
    download_done: asyncio.Event = field(default_factory=asyncio.Event)
    claim_started: asyncio.Event = field(default_factory=asyncio.Event)
    claim_gone: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, request: Request | WebSocket) -> dict[str, object]:
        entry: dict[str, object] = {
            "path": request.url.path,
            "query": request.url.query,
            "scheme": request.url.scheme,  # after uvicorn's proxy headers, as the app sees it
            "headers": dict(request.headers),
        }
        self.seen.append(entry)
        return entry

    def paths(self) -> list[object]:
        return [entry["path"] for entry in self.seen]

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/worker/v1/jobs/{job}/outputs", self.outputs, methods=["PUT"]),
                Route("/worker/v1/jobs/{job}/files/outputs", self.download),
                Route("/worker/v1/claim", self.claim, methods=["POST"]),
                Route("/user001/api/view", self.download),
                Route("/user001/api/upload/image", self.upload, methods=["POST"]),
                Route("/user001/assets/{name}", self.asset),
                WebSocketRoute("/user001/ws", self.socket),
                WebSocketRoute("/admin/ws", self.socket),
                Route("/{path:path}", self.echo, methods=["GET", "POST"]),
            ]
        )

    async def echo(self, request: Request) -> Response:
        return JSONResponse(self.record(request))

    async def asset(self, request: Request) -> Response:
        self.record(request)
        name = request.path_params["name"]
        text = "".join(f"// line {i}: const x{i} = {i};\n" for i in range(500))
        media = {
            "app.js": "text/javascript",
            "style.css": "text/css",
            "object_info.json": "application/json",
            "image.png": "image/png",
        }[name]
        return Response(text, media_type=media)

    async def outputs(self, request: Request) -> Response:
        job = request.path_params["job"]
        self.record(request)
        digest, received = hashlib.sha256(), 0
        try:
            async for part in request.stream():
                if part:
                    digest.update(part)
                    received += len(part)
                    self.first_bytes[job].set()
        except ClientDisconnect:
            return Response(status_code=499)
        finally:
            self.upload_ended[job].set()
        return JSONResponse({"sha256": digest.hexdigest(), "size": received}, status_code=201)

    async def download(self, request: Request) -> Response:
        self.record(request)
        total = int(request.query_params["size"])

        async def body() -> AsyncIterator[bytes]:
            for part in pattern(total):
                yield part
            self.download_done.set()

        headers = {"Content-Length": str(total)}
        return StreamingResponse(body(), media_type="image/png", headers=headers)

    async def upload(self, request: Request) -> Response:
        self.record(request)
        form = await request.form()
        image = form["image"]
        assert not isinstance(image, str)
        data = await image.read()
        return JSONResponse({"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})

    async def claim(self, request: Request) -> Response:
        self.record(request)
        self.claim_started.set()

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(disconnected(), float(request.query_params["wait"]))
        except TimeoutError:
            return Response(status_code=204)  # nothing to run yet
        self.claim_gone.set()
        return Response(status_code=499)

    async def socket(self, ws: WebSocket) -> None:
        entry = self.record(ws)
        await ws.accept()
        await ws.send_json(entry)
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await ws.send_bytes(message["bytes"])
                else:
                    await ws.send_text(message["text"])


@dataclass
class Stack:
    nginx: Nginx
    upstream: Upstream
    tls: ssl.SSLContext

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.nginx.ports.https}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.nginx.ports.http}"

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.https, verify=self.tls, timeout=WAIT, **kwargs)  # type: ignore[arg-type]

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A bare TLS connection, for what an HTTP client will not do (lie about a length,
        stop reading halfway)."""
        return await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.nginx.ports.https, ssl=self.tls), WAIT
        )


@pytest.fixture
async def stack(nginx: Nginx, client_tls: ssl.SSLContext) -> AsyncIterator[Stack]:
    upstream = Upstream()
    async with running(nginx, upstream.app):
        yield Stack(nginx, upstream, client_tls)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}


# --- Requests through nginx ------------------------------------------------------------------


async def test_a_page_request_reaches_the_app_with_host_and_forwarding_headers(
    stack: Stack,
) -> None:
    async with stack.client() as client:
        r = await client.get(
            "/user001/?tab=1",
            headers={"Host": PUBLIC_HOST, "X-Forwarded-For": "203.0.113.9"},
        )
    assert r.status_code == 200
    seen = r.json()
    headers = seen["headers"]
    assert seen["path"] == "/user001/" and seen["query"] == "tab=1"
    assert headers["host"] == PUBLIC_HOST  # so Origin https://<host> matches it in the app
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["scheme"] == "https"  # uvicorn trusts X-Forwarded-Proto from loopback
    assert "connection" not in headers  # upstream keepalive: no "Connection: close"
    # Security headers, and no nginx version.
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert "content-security-policy" not in r.headers
    assert r.headers["server"] == "nginx"


PARTICIPANT = ("user001", "participant-pw")


@pytest.fixture
async def real_app(nginx: Nginx, redis_server: RedisServer, prefix: str) -> AsyncIterator[Nginx]:
    """The queue manager itself behind the nginx, with one participant account."""
    from queue_manager.api.app import create_app
    from queue_manager.store.accounts import AccountStore, Role

    app = create_app(make_settings(redis_server, prefix))
    async with running(nginx, app):
        accounts: AccountStore = app.state.accounts
        await accounts.add(PARTICIPANT[0], Role.PARTICIPANT, PARTICIPANT[1])
        yield nginx


async def test_the_real_app_behind_nginx_checks_origin_against_the_preserved_host(
    real_app: Nginx, client_tls: ssl.SSLContext
) -> None:
    """As a browser on port 443 sends them: Host without a port, Origin https://<host>."""
    base = f"https://127.0.0.1:{real_app.ports.https}"
    async with httpx.AsyncClient(base_url=base, verify=client_tls, timeout=WAIT) as client:
        assert (await client.get("/healthz")).status_code == 200
        for origin, status in ((f"https://{PUBLIC_HOST}", 200), ("https://evil.example", 403)):
            r = await client.post(
                "/user001/api/free",
                auth=PARTICIPANT,
                headers={"Host": PUBLIC_HOST, "Origin": origin},
            )
            assert r.status_code == status, (origin, r.text)


async def test_the_real_participant_socket_through_nginx(
    real_app: Nginx, client_tls: ssl.SSLContext
) -> None:
    """The app checks the same rule on the upgrade request, whose Host nginx passed on as
    $host (here 127.0.0.1, as the socket URL names no public host)."""
    url = f"wss://127.0.0.1:{real_app.ports.https}/user001/ws?clientId=abc"
    basic = {"Authorization": "Basic " + base64.b64encode(":".join(PARTICIPANT).encode()).decode()}
    async with connect(
        url, ssl=client_tls, origin=Origin("https://127.0.0.1"), additional_headers=basic
    ) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert first["type"] == "status"
        assert first["data"]["sid"] == "abc"
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            url, ssl=client_tls, origin=Origin("https://evil.example"), additional_headers=basic
        )
    assert refused.value.response.status_code == 403


async def test_plain_http_redirects_to_https_and_serves_acme_challenges(
    stack: Stack, tmp_path: Path
) -> None:
    token = tmp_path / "acme" / ".well-known" / "acme-challenge" / "tok3n"
    token.write_text("tok3n.key-authorization")
    async with httpx.AsyncClient(base_url=stack.http, timeout=WAIT) as client:
        r = await client.get("/user001/api/view?filename=a.png", headers={"Host": PUBLIC_HOST})
        assert r.status_code == 301
        assert r.headers["location"] == f"https://{PUBLIC_HOST}/user001/api/view?filename=a.png"
        challenge = await client.get("/.well-known/acme-challenge/tok3n")
        assert challenge.status_code == 200
        assert challenge.text == "tok3n.key-authorization"
    assert stack.upstream.seen == []  # port 80 never proxies


@pytest.mark.parametrize("path", ["/user001/ws", "/admin/ws"])
async def test_websockets_upgrade_and_echo(stack: Stack, path: str) -> None:
    url = f"wss://127.0.0.1:{stack.nginx.ports.https}{path}"
    async with connect(url, ssl=stack.tls, max_size=4 * MiB) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert hello["path"] == path
        assert hello["headers"]["host"] == "127.0.0.1"  # $host: the name, without the port
        assert hello["headers"]["x-forwarded-proto"] == "https"
        assert hello["headers"]["x-real-ip"] == "127.0.0.1"
        assert hello["headers"]["upgrade"].lower() == "websocket"
        for message in ("status", json.dumps({"type": "progress", "value": 3})):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), WAIT) == message
        frame = random.Random(1).randbytes(2 * MiB)  # a preview image
        await ws.send(frame)
        assert await asyncio.wait_for(ws.recv(), WAIT) == frame


async def test_a_worker_upload_streams_through_without_buffering(stack: Stack) -> None:
    """30 MiB, chunked, as the worker agent sends it. Past the first MiB, the client waits
    until the app has received bytes: that only happens if nginx passes the body on as it
    arrives (with request buffering, it would wait for the whole body and this would hang)."""
    total = 30 * MiB
    first_bytes = stack.upstream.first_bytes["job-1"]

    async def body() -> AsyncIterator[bytes]:
        parts = pattern(total)
        yield next(parts)
        try:
            await asyncio.wait_for(first_bytes.wait(), WAIT)
        except TimeoutError:
            raise AssertionError("nginx held the upload back: request buffering is on") from None
        for part in parts:
            yield part

    async with stack.client() as client:
        r = await client.put(
            "/worker/v1/jobs/job-1/outputs",
            params={"attempt": 1, "filename": "video.mp4"},
            content=body(),
        )
    assert r.status_code == 201, r.text
    assert r.json() == {"sha256": sha256_of(total), "size": total}
    (seen,) = stack.upstream.seen
    assert seen["query"] == "attempt=1&filename=video.mp4"
    assert seen["headers"]["transfer-encoding"] == "chunked"  # type: ignore[index]
    assert stack.nginx.temp_files() == []


async def test_a_worker_upload_has_no_size_limit(stack: Stack) -> None:
    """Announce 64 GiB: nginx must not answer 413, and hands the first bytes to the app."""
    reader, writer = await stack.raw()
    try:
        writer.write(
            b"PUT /worker/v1/jobs/huge/outputs?attempt=1&filename=x.bin HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Content-Length: %d\r\n\r\n" % (64 * 2**30)
        )
        writer.write(next(pattern(MiB)))
        await writer.drain()
        await asyncio.wait_for(stack.upstream.first_bytes["huge"].wait(), WAIT)
        assert not reader.at_eof()
    finally:
        writer.close()
    # Hanging up mid-body reaches the app as a disconnect, not as a finished upload.
    await asyncio.wait_for(stack.upstream.upload_ended["huge"].wait(), WAIT)
    assert stack.nginx.temp_files() == []


async def test_a_participant_upload_over_the_limit_is_refused_by_nginx(stack: Stack) -> None:
    """Only the headers are sent: nginx answers 413 from Content-Length alone."""
    reader, writer = await stack.raw()
    try:
        writer.write(
            b"POST /user001/api/upload/image HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: %d\r\n\r\n" % (200 * MiB)
        )
        await writer.drain()
        status, headers = await read_head(reader)
    finally:
        writer.close()
    assert status == 413
    assert headers["x-content-type-options"] == "nosniff"  # `always`: error pages too
    assert headers["server"] == "nginx"
    assert stack.upstream.seen == []


async def test_a_participant_upload_within_the_limit_arrives_intact(stack: Stack) -> None:
    image = random.Random(2).randbytes(5 * MiB)
    async with stack.client() as client:
        r = await client.post(
            "/user001/api/upload/image",
            files={"image": ("photo.png", image, "image/png")},
            data={"overwrite": "true"},
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"sha256": hashlib.sha256(image).hexdigest(), "size": len(image)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", ["/user001/api/view?filename=big.png", "/worker/v1/jobs/j/files/outputs?name=big.png"]
)
async def test_downloads_stream_at_the_clients_pace_without_temp_files(
    stack: Stack, path: str
) -> None:
    """64 MiB to a client that stops reading after the first MiB: the app must not be able to
    finish sending (nginx is not soaking the body up into memory or temp files), and all of it
    arrives intact once the client reads on."""
    total = 64 * MiB
    reader, writer = await stack.raw()
    try:
        writer.write(f"GET {path}&size={total} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n".encode())  # fmt: skip
        await writer.drain()
        status, headers = await read_head(reader)
        assert status == 200
        assert int(headers["content-length"]) == total
        digest = hashlib.sha256(await asyncio.wait_for(reader.readexactly(MiB), WAIT))
        with pytest.raises(TimeoutError):  # a pause: nothing here may take this long
            await asyncio.wait_for(stack.upstream.download_done.wait(), 0.5)
        for _ in range(total // MiB - 1):
            digest.update(await asyncio.wait_for(reader.readexactly(MiB), WAIT))
    finally:
        writer.close()
    assert digest.hexdigest() == sha256_of(total)
    assert stack.nginx.temp_files() == []


@pytest.mark.parametrize(
    ("name", "compressed"),
    [("app.js", True), ("style.css", True), ("object_info.json", True), ("image.png", False)],
)
async def test_text_assets_are_gzipped(stack: Stack, name: str, compressed: bool) -> None:
    async with stack.client() as client:
        r = await client.get(f"/user001/assets/{name}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert (r.headers.get("content-encoding") == "gzip") is compressed
    assert r.text.startswith("// line 0:")  # httpx undoes the gzip
    if compressed:
        assert "accept-encoding" in r.headers["vary"].lower()


async def test_the_worker_long_poll_is_held_and_a_hang_up_reaches_the_app(stack: Stack) -> None:
    async with stack.client() as client:
        r = await client.post("/worker/v1/claim", params={"wait": 0.2}, headers={"X-T": "1"})
        assert r.status_code == 204
        # A worker that goes away mid-poll: the app must hear it to hand the job back.
        stack.upstream.claim_started.clear()
        poll = asyncio.create_task(client.post("/worker/v1/claim", params={"wait": 60}))
        await asyncio.wait_for(stack.upstream.claim_started.wait(), WAIT)
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
    await asyncio.wait_for(stack.upstream.claim_gone.wait(), WAIT)


def _can_bind(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


async def test_metrics_are_only_for_the_local_machine(stack: Stack) -> None:
    async with stack.client() as client:
        assert (await client.get("/metrics")).json()["path"] == "/metrics"
    if not _can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 is not a local address here (Linux has all of 127/8)")
    transport = httpx.AsyncHTTPTransport(verify=stack.tls, local_address="127.0.0.2")
    async with stack.client(transport=transport) as client:
        r = await client.get("/metrics")
        assert r.status_code == 403
        assert (await client.get("/healthz")).status_code == 200  # only /metrics is closed
    assert stack.upstream.paths() == ["/metrics", "/healthz"]
