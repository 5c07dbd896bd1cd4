"""A frozen WebSocket client (it never reads) delays nobody: the others get every event, and
the frozen one is closed once its socket stops taking frames."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import pytest
import websockets
from fastapi import FastAPI
from redis.asyncio import Redis

from queue_manager.api import sockets
from queue_manager.core.ids import UserId
from queue_manager.core.jobs import Lane
from queue_manager.service.queue import QueueService
from queue_manager.store.keys import Keys
from tests.support.jobs import prompt
from tests.support.participants import basic


async def frozen_client(base: str, path: str, name: str) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads a byte; its
    receive buffer is tiny, so the server's sends back up quickly."""
    host, port = base.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    key = base64.b64encode(b"0123456789abcdef").decode()
    raw.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: {basic(name)['Authorization']}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.to_thread(raw.recv, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


@pytest.mark.parametrize("path", ["/admin/ws", "/user001/ws"])
async def test_a_client_that_never_reads_does_not_delay_the_others(
    app: FastAPI,
    base: str,
    path: str,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sockets, "SEND_TIMEOUT", 1.0)
    service: QueueService = app.state.service
    keys = Keys(service.settings.key_prefix)
    name = "teacher" if path.startswith("/admin") else "user001"
    # A running-looking job of user001 with a large preview: every `job.preview` event makes
    # a big frame for both kinds of socket (the binary preview; the admin event's data).
    job = await service.submit(UserId("user001"), Lane.NORMAL, prompt("SaveImage"))
    big = base64.b64encode(b"\xff" * 200_000).decode()
    await redis.hset(keys.job(job.id), mapping={"preview": big, "preview_mime": "image/png"})
    frozen = await frozen_client(base, path, name)
    url = base.replace("http", "ws", 1) + path
    headers = basic(name)
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ok:
        await ok.send(json.dumps({"type": "workshop.subscribe"}))
        seen: set[str] = set()

        async def read_healthy() -> None:
            while True:
                message = await ok.recv()
                if isinstance(message, str):
                    seen.update(_job_ids(json.loads(message)))

        reader = asyncio.create_task(read_healthy())
        try:
            # Big previews until the frozen socket is found stalled and closed (how many it
            # takes depends on the kernel's buffers and on how many previews get coalesced for
            # the slow reader); the healthy one reads all along.
            for _ in range(2000):
                await redis.xadd(
                    keys.events,
                    {
                        "t": "job.preview",
                        "j": job.id,
                        "u": "user001",
                        "w": "",
                        "at": time.time(),
                        "d": json.dumps({"pad": big}),
                    },
                )
                if await _sockets(service) <= 0:  # only the healthy socket is left
                    break
                await asyncio.sleep(0.01)
            assert await _sockets(service) <= 0
            # The hub carries on: the healthy socket gets what comes next.
            last = await service.submit(UserId("user001"), Lane.NORMAL, prompt("SaveImage"))
            for _ in range(1000):
                if last.id in seen:
                    break
                await asyncio.sleep(0.01)
            assert last.id in seen
        finally:
            reader.cancel()
        assert service.background_ok()
    frozen.close()


async def _sockets(service: QueueService) -> int:
    """Open sockets besides the healthy one, as /metrics counts them."""
    text = (await service.metrics_text()).decode()
    line = next(x for x in text.splitlines() if x.startswith("comfy_workshop_websocket_clients "))
    return int(float(line.split()[1])) - 1


def _job_ids(message: dict[str, object]) -> set[str]:
    data = message.get("data")
    if not isinstance(data, dict):
        return set()
    if message["type"] == "event" and isinstance(data.get("job"), str):
        return {data["job"]}
    if message["type"] == "workshop.status":
        jobs = data.get("jobs")
        if isinstance(jobs, list):
            return {j["prompt_id"] for j in jobs if isinstance(j, dict)}
    return set()
