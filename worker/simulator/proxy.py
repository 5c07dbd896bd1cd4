"""A reverse proxy's I/O: one HTTP request passed on to a replica and its answer streamed back,
one WebSocket bridged frame by frame (text and binary, both ways), an answer refused or
dropped. No policy here: the balancer decides where, when and whether."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import httpx
import websockets
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection

log = logging.getLogger(__name__)

# Headers about one hop, never passed on (RFC 9110 section 7.6.1), and the ones httpx sets.
_REQUEST_SKIPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_RESPONSE_SKIPPED = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "te", "trailer", "transfer-encoding"}
)
OPEN_TIMEOUT = 10.0  # seconds to open a replica's socket
DISCONNECT_WAIT = 5.0
# Close codes a peer may send; others (1005, 1006, 1015: "none", "abnormal") become 1011.
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class ReplicaUnreachable(Exception):
    """The replica did not answer (refused, reset, timed out) or broke off mid-answer."""


# -- HTTP ---------------------------------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def upstream_url(base: str, scope: Scope, scheme: str = "http") -> str:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    if scheme == "ws":
        base = "ws" + base.removeprefix("http")
    path = raw.decode("latin-1")
    return base + path + (f"?{query.decode('latin-1')}" if query else "")


async def open_answer(
    client: httpx.AsyncClient, base: str, scope: Scope, body: bytes
) -> httpx.Response:
    """Send the request to the replica at `base`; its answer, body not read yet (close it)."""
    headers = [
        (key, value)
        for key, value in scope["headers"]
        if key.decode("latin-1").lower() not in _REQUEST_SKIPPED
    ]
    request = client.build_request(
        scope["method"], upstream_url(base, scope), headers=headers, content=body
    )
    try:
        return await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise ReplicaUnreachable(str(exc) or type(exc).__name__) from exc


async def relay(answer: httpx.Response, send: Send, receive: Receive) -> None:
    """Stream the replica's answer to the client as it came (raw bytes, its own headers)."""
    headers = [
        (key, value)
        for key, value in answer.headers.raw
        if key.decode("latin-1").lower() not in _RESPONSE_SKIPPED
    ]
    start = {"type": "http.response.start", "status": answer.status_code, "headers": headers}
    await send(start)
    try:
        async for chunk in answer.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.HTTPError:
        # The replica died mid-answer: so does the client's connection, as behind any LB.
        await drop_connection(send, receive)
        return
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def answer_json(
    send: Send, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    """An answer of the proxy's own, in ComfyUI's JSON content type."""
    data = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def drop_connection(send: Send, receive: Receive) -> None:
    """Close the client's connection with no (more) answer, as a replica that dies after
    acting. uvicorn's `send` is a method of the connection's request cycle, which holds its
    transport; on a server where it is not, a broken-off answer is the nearest thing."""
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not callable(getattr(transport, "close", None)):
        raise ConnectionAbortedError("answer dropped (no transport to close)")
    transport.close()
    # Wait until the server has seen the connection go: it then expects no answer from us.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCONNECT_WAIT):
            while (await receive())["type"] != "http.disconnect":
                pass


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (its request body already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# -- WebSocket ----------------------------------------------------------------------------


async def deny(socket: WebSocket, status: int, error: str) -> None:
    """Refuse a WebSocket handshake with an HTTP answer where the server can send one."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(JSONResponse({"error": error}, status))
    else:
        await socket.close(1013, error[:100])


async def bridge(socket: WebSocket, url: str) -> None:
    """Open the replica's socket at `url`, accept the client's, and pass frames both ways
    until either side closes; the other is then closed with the same code."""
    try:
        upstream = await websockets.connect(
            url, open_timeout=OPEN_TIMEOUT, max_size=None, compression=None
        )
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        await deny(socket, 502, f"replica socket unavailable: {exc}")
        return
    async with upstream:
        await socket.accept()
        pumps = {
            asyncio.create_task(_client_to_replica(socket, upstream), name="ws-up"),
            asyncio.create_task(_replica_to_client(upstream, socket), name="ws-down"),
        }
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.wait(pumps)
            _note_failures(pumps)
            await _close_client(socket, upstream.close_code)


async def _client_to_replica(socket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(_sendable(message.get("code"), otherwise=1000))
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _replica_to_client(upstream: ClientConnection, socket: WebSocket) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for frame in upstream:
            if isinstance(frame, str):
                await socket.send_text(frame)
            else:
                await socket.send_bytes(frame)


async def _close_client(socket: WebSocket, code: int | None) -> None:
    if WebSocketState.DISCONNECTED in (socket.client_state, socket.application_state):
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await socket.close(_sendable(code))


def _sendable(code: int | None, otherwise: int = 1011) -> int:
    if code is not None and (code in _SENDABLE or 3000 <= code <= 4999):
        return code
    return otherwise


def _note_failures(tasks: set[asyncio.Task[None]]) -> None:
    """A side that failed (the client vanished mid-send) ends the bridge; say why at DEBUG."""
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.debug("socket bridge ended: %r", task.exception())
