"""A frozen WebSocket client (it completes the handshake, then never reads a byte, its receive
buffer tiny) on each socket the product serves, the participant's ComfyUI socket
`/<user>/ws` and the dashboard's `/admin/ws` (the only two: api/participant/socket.py and
api/admin/socket.py), both at once, in a real queue-manager process, while a burst runs: the
healthy sockets beside them, the frozen page's own user's included, hear every job's end in
time; the server closes both frozen sockets (it does not wait for them, and their
subscriptions go); the burst completes.

tests/integration/api/test_slow_clients.py covers one frozen socket at a time in-process
with a shortened send timeout; here the product's own timeout runs. What backs the frozen
sockets up is what a participant can make: a Preview Any node showing a long text, whose
`executed` frame (and the dashboard's copy of the event) is a megabyte."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from queue_manager.api.sockets import SEND_TIMEOUT
from queue_manager.core.ids import JobId, UserId
from tests.reliability.support.invariants import (
    Accepted,
    ParticipantPage,
    assert_room_consistent,
)
from tests.support.waiting import until

from ._ends import assert_told_truly
from ._pages import Participant, accepted, logged_in, open_pages
from ._stack import running_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

USERS = [UserId("user001"), UserId("user002"), UserId("user003")]
FROZEN_PAGE = "frozen-tab"  # the clientId of user001's frozen tab
BIG_RUNS = 8  # Preview Any runs of the frozen tab: 8 MB toward each frozen socket
BIG_TEXT = "x" * 2**20
EACH = 4  # ordinary Runs of each healthy page
METRICS_TOKEN = "fault-suite-metrics-token"
# A hub that waited for a frozen socket would hold everyone until the socket was found
# stalled (SEND_TIMEOUT); healthy sockets must hear each end well before that.
IN_TIME = SEND_TIMEOUT / 2


async def test_frozen_sockets_are_cut_off_and_hold_nobody_up(tmp_path: Path) -> None:
    settings = {"CW_METRICS_TOKEN": METRICS_TOKEN, "CW_MAX_RUNNING_PER_USER": "-1"}
    async with (
        running_stack(tmp_path, users=len(USERS), settings=settings) as stack,
        stack.room() as room,
    ):
        url = stack.managers[0].url
        passwords = stack.passwords()
        async with (
            logged_in(passwords, USERS, url) as people,
            open_pages(passwords, USERS, url) as pages,
            dashboard(url, "instructor", passwords["instructor"]) as healthy_dashboard,
        ):
            await until(lambda: workers_joined(room), 60, "both workers")
            before = await open_sockets(url)
            frozen = [
                await frozen_client(
                    url, f"/user001/ws?clientId={FROZEN_PAGE}", passwords, "user001"
                ),
                await frozen_client(url, "/admin/ws", passwords, "instructor"),
            ]
            try:
                await until(lambda: at(url, before + 2), 10, "the frozen sockets to be counted")
                port = int(url.rsplit(":", 1)[1])
                assert all(held(port, raw) for raw in frozen)  # the check below can see them
                big = [await run_big(people[0]) for _ in range(BIG_RUNS)]
                await asyncio.gather(
                    *(press(p, page) for p, page in zip(people, pages, strict=True))
                )
                # Closed by the server, not waited for: the sockets' count falls back; and the
                # connections go too, with what was queued for them, though the clients
                # still read nothing.
                await until(lambda: at(url, before), 3 * SEND_TIMEOUT, "frozen sockets closed")
                await until(
                    lambda: not any(held(port, raw) for raw in frozen),
                    4 * SEND_TIMEOUT,
                    "the server to drop the frozen connections",
                )
            finally:
                for raw in frozen:
                    raw.close()
            healthy = accepted(people)
            jobs = [*healthy, *big]
            await assert_room_consistent(room, jobs, pages, set(USERS), timeout=90)
            await assert_told_truly(room, USERS, jobs)
            ends = {a.job_id: (await room.job(a.job_id)) for a in jobs}
            finished = {j: job.finished_at for j, job in ends.items() if job and job.finished_at}
            assert_in_time(pages, healthy_dashboard, finished, healthy)


async def run_big(person: Participant) -> Accepted:
    """The frozen tab's Run: a Preview Any of a megabyte of text."""
    graph = {"1": {"class_type": "PreviewAny", "inputs": {"source": BIG_TEXT}}}
    body = {"prompt": graph, "client_id": FROZEN_PAGE}
    sent = await person.http.post(f"/{person.name}/api/prompt", json=body)
    assert sent.status_code == 200, sent.text
    return Accepted(JobId(sent.json()["prompt_id"]), UserId(person.name), outputs=0)


async def press(person: Participant, page: ParticipantPage) -> None:
    for _ in range(EACH):
        answer = await person.submit(page.client_id)
        assert answer.job is not None, answer


async def workers_joined(room: Any) -> bool:
    return bool(await room.redis.zcard(room.keys.workers) == 2)


async def open_sockets(url: str) -> int:
    """This process's open sockets, as /metrics counts them."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics", headers=headers)).text
    line = next(x for x in text.splitlines() if x.startswith("comfy_workshop_websocket_clients "))
    return int(float(line.split()[1]))


async def at(url: str, count: int) -> bool:
    return await open_sockets(url) == count


async def frozen_client(url: str, path: str, passwords: dict[str, str], name: str) -> socket.socket:
    """A client that completes the WebSocket handshake and then never reads; its receive
    buffer is tiny, so the server's sends back up as soon as its own buffers are full."""
    return await asyncio.to_thread(_handshake, url, path, name, passwords[name])


def _handshake(url: str, path: str, name: str, password: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect((host, int(port)))
    auth = base64.b64encode(f"{name}:{password}".encode()).decode()
    key = base64.b64encode(b"fault-suite-key!").decode()
    raw.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Basic {auth}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


def held(port: int, client: socket.socket) -> bool:
    """Whether the server still holds its end of `client`'s connection (as the kernel lists
    it in /proc/net/tcp: the frozen client itself must read nothing)."""
    peer = client.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == peer:
            return state != "07"  # TCP_CLOSE
    return False


@dataclass
class Heard:
    """What a healthy dashboard heard: each job's end event, with when it arrived."""

    ends: dict[str, float] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def dashboard(url: str, name: str, password: str) -> AsyncIterator[Heard]:
    heard = Heard()
    auth = base64.b64encode(f"{name}:{password}".encode()).decode()
    ws_url = url.replace("http", "ws", 1) + "/admin/ws"

    async def listen() -> None:
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Basic {auth}"}, max_size=None
        ) as ws:
            async for message in ws:
                frame = json.loads(message)
                data = frame.get("data") or {}
                if frame.get("type") == "event" and data.get("type") in ENDS:
                    heard.ends.setdefault(str(data["job"]), time.time())

    task = asyncio.create_task(listen())
    try:
        yield heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


ENDS = {"job.completed", "job.failed", "job.cancelled"}


def assert_in_time(
    pages: list[ParticipantPage],
    heard: Heard,
    finished: dict[JobId, float],
    healthy: list[Accepted],
) -> None:
    """Every end reached the healthy dashboard, and each healthy page its own jobs' ends,
    within IN_TIME of the moment the job ended."""
    never = float("inf")
    lags = {f"dashboard, {j}": heard.ends.get(j, never) - at for j, at in finished.items()}
    for page in pages:
        told = {
            str(f.message["data"]["prompt_id"]): f.at
            for f in page.frames
            if f.type == "execution_success"
        }
        for a in healthy:
            if a.client_id == page.client_id:
                lags[f"{page.user}'s page, {a.job_id}"] = (
                    told.get(a.job_id, never) - finished[a.job_id]
                )
    late = {k: round(v, 2) for k, v in lags.items() if v > IN_TIME}
    assert not late, f"heard late or never (seconds after the end): {late}"
