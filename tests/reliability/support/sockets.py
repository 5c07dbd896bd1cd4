"""A participant's page as the fault suite sees it: the ComfyUI socket kept open the way the
frontend keeps it, and the page's own HTTP calls.

The frontend opens `/<user>/ws?clientId=<id>`, sends `feature_flags` first (our extension then
asks for `workshop.subscribe`), and when the socket drops it reconnects by itself with the same
clientId (sessionStorage), without a reload; on `reconnected` and on each `status` it re-reads
its queue (`/api/jobs`). `ParticipantPage` does the same and records every frame with the time
it arrived and the connection ("epoch") it came on, so the checks can tell a page that was
connected when its job ended (it must have been told on the socket) from one that was not (it
learns from `/api/jobs/{id}` as the frontend re-reads it)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import websockets

from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Job, JobStatus

if TYPE_CHECKING:
    from tests.reliability.support.invariants import Accepted

FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
SUBSCRIBE = {"type": "workshop.subscribe"}
RECONNECT_DELAY = 0.3  # the frontend retries about this often at first
TIMEOUT = 10.0  # every connect and HTTP call
# How each expected end reads in `/api/jobs` (an interrupted run reads "cancelled") and which
# closing message the submitting page gets on its socket (none for a job cancelled unstarted).
API_STATUSES = {
    JobStatus.COMPLETED: {"completed"},
    JobStatus.FAILED: {"failed", "cancelled"},
    JobStatus.CANCELLED: {"cancelled"},
}
OUTCOMES = {
    JobStatus.COMPLETED: {"execution_success"},
    JobStatus.FAILED: {"execution_error", "execution_interrupted"},
    JobStatus.CANCELLED: {"execution_interrupted"},
}
CLOSING = {"execution_success", "execution_error", "execution_interrupted"}


@dataclass
class Epoch:
    """One connection: from its first `status` frame (the server subscribed before sending
    it) until it dropped (None while it stays up)."""

    opened: float
    sid: str
    closed: float | None = None


@dataclass(frozen=True)
class Frame:
    at: float
    epoch: int
    message: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.message.get("type"))

    def about(self, job_id: str) -> bool:
        data = self.message.get("data")
        return isinstance(data, dict) and data.get("prompt_id") == job_id


@dataclass
class ParticipantPage:
    """One participant's browser tab: `async with ParticipantPage(base, user, password):`."""

    base: str
    user: UserId
    password: str
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    epochs: list[Epoch] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _closing: bool = False
    _http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base, auth=(self.user, self.password), timeout=TIMEOUT
            )
        return self._http

    @property
    def connected(self) -> bool:
        return bool(self.epochs) and self.epochs[-1].closed is None

    async def __aenter__(self) -> ParticipantPage:
        self._task = asyncio.create_task(self._keep_open())
        await self.until_connected()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.http.aclose()

    async def until_connected(self, timeout: float = TIMEOUT) -> bool:
        """Wait until the socket is up (again); False if it is not within `timeout`."""
        return await _within(timeout, lambda: self.connected)

    async def submit(self, prompt: dict[str, Any]) -> JobId:
        """The Run button: POST /<user>/api/prompt with this page's clientId; raises unless
        the manager accepted it (the test records it as `Accepted` only then)."""
        body = {"prompt": prompt, "client_id": self.client_id}
        r = await self.http.post(f"/{self.user}/api/prompt", json=body)
        r.raise_for_status()
        return JobId(r.json()["prompt_id"])

    # -- the socket, kept open like the frontend keeps it ------------------------------------

    async def _keep_open(self) -> None:
        url = self.base.replace("http", "ws", 1) + f"/{self.user}/ws?clientId={self.client_id}"
        pair = f"{self.user}:{self.password}".encode()
        header = "Basic " + base64.b64encode(pair).decode()
        while not self._closing:
            with contextlib.suppress(OSError, TimeoutError, websockets.WebSocketException):
                async with websockets.connect(
                    url,
                    additional_headers={"Authorization": header},
                    origin=websockets.Origin(self.base),
                    open_timeout=TIMEOUT,
                    close_timeout=1,
                ) as ws:
                    await ws.send(json.dumps(FLAGS))
                    async for raw in ws:
                        self._record(raw)
                        if len(self.epochs) and self.frames[-1].type == "feature_flags":
                            await ws.send(json.dumps(SUBSCRIBE))
            if self.connected:
                self.epochs[-1].closed = time.time()
            await asyncio.sleep(RECONNECT_DELAY)

    def _record(self, raw: str | bytes) -> None:
        message = {"type": "<binary>"} if isinstance(raw, bytes) else json.loads(raw)
        data = message.get("data")
        if message.get("type") == "status" and isinstance(data, dict) and "sid" in data:
            self.epochs.append(Epoch(time.time(), str(data["sid"])))
        self.frames.append(Frame(time.time(), len(self.epochs) - 1, message))

    # -- what the checks ask -----------------------------------------------------------------

    def told(self, job_id: str, epoch: int) -> list[str]:
        """The closing frames about `job_id` on connection `epoch`, in order, with the end
        marker (`executing` with node null) spelled "done"."""
        kinds = []
        for f in self.frames:
            if f.epoch != epoch or not f.about(job_id):
                continue
            if f.type in CLOSING:
                kinds.append(f.type)
            elif f.type == "executing" and f.message["data"].get("node") is None:
                kinds.append("done")
        return kinds

    def open_at(self, when: float) -> int | None:
        """The connection that was up at `when` and still is, if any."""
        for i, e in enumerate(self.epochs):
            if e.opened <= when and e.closed is None:
                return i
        return None

    def remaining(self) -> int | None:
        """`queue_remaining` of the latest `status` frame on the current connection."""
        for f in reversed(self.frames):
            if f.epoch == len(self.epochs) - 1 and f.type == "status":
                return int(f.message["data"]["status"]["exec_info"]["queue_remaining"])
        return None

    async def problems(
        self, jobs: Sequence[tuple[Accepted, Job]], live: int, timeout: float = TIMEOUT
    ) -> list[str]:
        """The socket is up again with the same clientId, the page learnt every job's end
        (on the socket if it was connected then, else from `/api/jobs/{id}`), and its latest
        `status` says `live` jobs are left."""
        name = f"{self.user}'s page {self.client_id[:8]}"
        if not await self.until_connected(timeout):
            return [f"{name}: the socket did not come back within {timeout}s"]
        problems = [
            f"{name}: reconnected as {e.sid}, not its own clientId (a reload would be needed)"
            for e in self.epochs
            if e.sid != self.client_id
        ]
        for accepted, job in jobs:
            problems += await self._learnt(name, accepted, job, timeout)
        if not await _within(timeout, lambda: self.remaining() == live):
            problems.append(f"{name}: status says {self.remaining()} left, the room {live}")
        return problems

    async def _learnt(self, name: str, accepted: Accepted, job: Job, timeout: float) -> list[str]:
        said = [k for e in range(len(self.epochs)) for k in self.told(job.id, e) if k != "done"]
        if len(said) > 1:
            return [f"{name}: told {said} about job {job.id}, one end at most"]
        if any(k not in OUTCOMES[accepted.expected] for k in said):
            return [f"{name}: told {said} about job {job.id}, which is {accepted.expected}"]
        epoch = self.open_at(job.finished_at or 0.0)
        if epoch is not None:
            if not await _within(timeout, lambda: "done" in self.told(job.id, epoch)):
                return [f"{name}: connected when job {job.id} ended, never told it ended"]
            outcome = set(self.told(job.id, epoch)) & OUTCOMES[accepted.expected]
            if accepted.expected is JobStatus.COMPLETED and not outcome:
                return [f"{name}: connected when job {job.id} completed, no execution_success"]
            return []
        r = await self.http.get(f"/{self.user}/api/jobs/{job.id}")
        status = r.json().get("status") if r.status_code == 200 else r.status_code
        if status not in API_STATUSES[accepted.expected]:
            return [f"{name}: /api/jobs/{job.id} says {status}, expected {accepted.expected}"]
        return []


async def _within(timeout: float, condition: Any) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True
