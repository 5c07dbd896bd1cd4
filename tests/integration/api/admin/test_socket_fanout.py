"""`/admin/ws` under a burst: every state change reaches every dashboard, in order, however far
behind one falls; only progress is coalesced for a slow one, and its newest value arrives."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from fastapi import FastAPI
from redis.asyncio import Redis

from queue_manager.service.queue import QueueService
from queue_manager.store.keys import Keys
from tests.support.participants import basic

JOBS = [f"burst-{n}" for n in range(4)]
STEPS = 30
# Big progress frames: the burst (24 MB) is more than the kernel's buffers take for a reader
# that stops reading, so the server's sends to it must wait and its backlog queues.
PAD = "x" * 200_000


def _burst() -> list[dict[str, Any]]:
    """Each job's whole life, the jobs interleaved as a busy room's are."""
    entries: list[dict[str, Any]] = []
    for job in JOBS:
        entries += [_entry("job.queued", job), _entry("job.claimed", job)]
    for job in JOBS:
        entries.append(_entry("job.started", job))
    for step in range(1, STEPS + 1):
        for job in JOBS:
            entries.append(_entry("job.progress", job, {"value": step, "max": STEPS, "pad": PAD}))
            if step == STEPS // 2:
                entries.append(_entry("job.executing", job, {"node": "9"}))
    for job in JOBS:
        entries += [_entry("job.executed", job), _entry("job.completed", job)]
    return entries


def _entry(kind: str, job: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "t": kind,
        "j": job,
        "u": "user001",
        "w": "gpu1",
        "at": time.time(),
        "d": json.dumps(data or {}),
    }


async def _events(next_text: Callable[[], Awaitable[str]], last_job: str) -> list[dict[str, Any]]:
    """Event frames until the last job's completion (state frames skipped)."""
    got: list[dict[str, Any]] = []
    while True:
        msg = json.loads(await asyncio.wait_for(next_text(), 10))
        if msg["type"] != "event" or msg["data"]["job"] not in JOBS:
            continue
        got.append(msg["data"])
        if msg["data"]["type"] == "job.completed" and msg["data"]["job"] == last_job:
            return got


class SlowDashboard:
    """A dashboard socket whose client stops reading once the handshake is done (a tiny
    kernel buffer and asyncio's own read limit), then reads text frames when asked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str, path: str) -> SlowDashboard:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=raw, limit=2**16)
        key = base64.b64encode(b"0123456789abcdef").decode()
        auth = basic("teacher")["Authorization"]
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: {auth}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def text(self) -> str:
        while True:
            b0, b1 = await self.reader.readexactly(2)
            size = b1 & 0x7F
            if size >= 126:
                size = int.from_bytes(await self.reader.readexactly(2 if size == 126 else 8))
            payload = await self.reader.readexactly(size)
            if b0 & 0x0F == 1:
                return payload.decode()

    def close(self) -> None:
        self.writer.close()


async def test_a_dashboard_that_falls_behind_still_gets_every_state_change_in_order(
    app: FastAPI, base: str, redis: Redis
) -> None:
    service: QueueService = app.state.service
    keys = Keys(service.settings.key_prefix)
    url = base.replace("http", "ws", 1) + "/admin/ws"
    slow = await SlowDashboard.open(base, "/admin/ws")
    try:
        assert json.loads(await slow.text())["type"] == "state"
        async with websockets.connect(
            url, additional_headers=basic("teacher"), max_size=None
        ) as fast:
            assert json.loads(await asyncio.wait_for(fast.recv(), 10))["type"] == "state"
            reading = asyncio.create_task(_events(fast.recv, JOBS[-1]))  # type: ignore[arg-type]
            written = []
            for entry in _burst():
                written.append((entry["t"], entry["j"], await redis.xadd(keys.events, entry)))
            slow_got = await _events(slow.text, JOBS[-1])  # only now does it read
            fast_got = await reading
    finally:
        slow.close()
    changes = [(t, j, str(i)) for t, j, i in written if t != "job.progress"]
    for got in (fast_got, slow_got):
        assert [
            (e["type"], e["job"], e["id"]) for e in got if e["type"] != "job.progress"
        ] == changes
        for job in JOBS:
            steps = [
                e["data"]["value"] for e in got if e["type"] == "job.progress" and e["job"] == job
            ]
            assert steps == sorted(steps) and steps[-1] == STEPS  # never older, the newest last
    assert len(slow_got) < len(written)  # it fell behind: progress was coalesced for it
