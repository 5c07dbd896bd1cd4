"""One stand-in participant over ComfyUI's own protocol, as the page speaks it: log in, open the
socket (`/<user>/ws?clientId=...`), press Run K times (`POST /<user>/api/prompt` with
`{client_id, prompt, extra_data}`), wait for each job's end on the socket (`executed`, then
`execution_success`), and fetch its images through `/<user>/api/view` as the page shows them.

Messages a socket misses (ComfyUI drops them while a socket reconnects) are not waited for in
vain: the job's history entry, ComfyUI's durable record, is asked every few seconds too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from queue_manager.rehearsal.client import Login, error_message, log_in, new_client, session_cookie
from queue_manager.rehearsal.prompts import RehearsalWorkflow, fresh_seeds
from queue_manager.rehearsal.stats import JobRun, Problem

OPEN_TIMEOUT = 30.0  # seconds for the socket's first frame
HISTORY_EVERY = 5.0  # seconds between asks of a job's history entry
SOCKET_TIMEOUT = 10.0
Say = Callable[..., None]  # Board.say(user, state, image=, problem=)


class ParticipantLost(Exception):
    """The participant could not take part (its socket never opened)."""


@dataclass
class Waiting:
    """What the socket (or history) said about one job."""

    started: float | None = None  # wall clock, when ComfyUI said it started
    files: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Participant(Protocol):
    """A stand-in participant, over the protocol or in a browser."""

    user: str
    jobs: dict[int, JobRun]  # by number, as far as they got
    problems: list[Problem]  # not tied to one job


@dataclass(frozen=True)
class Plan:
    base: str
    jobs: int
    workflow: RehearsalWorkflow
    timeout: float  # seconds a job may take from Run to image


class SocketParticipant:
    def __init__(self, plan: Plan, login: Login, rng: random.Random, say: Say) -> None:
        self._plan = plan
        self._login = login
        self._user = self.user = login.name
        self._rng = rng
        self._say = say
        self._client_id = uuid.uuid4().hex
        self._waiting: dict[str, Waiting] = {}
        self._opened = asyncio.Event()
        self.problems: list[Problem] = []  # not tied to one job (the socket dropped)
        self.jobs: dict[int, JobRun] = {}  # as far as they got (a stop reads them)

    async def run(self) -> list[JobRun]:
        async with new_client(self._plan.base) as http:
            self._say(self._user, "logging in")
            await log_in(http, self._login)
            reader = asyncio.create_task(self._read_socket(http))
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    await self._opened.wait()
            except TimeoutError:
                reader.cancel()
                raise ParticipantLost(f"its socket did not open in {OPEN_TIMEOUT:.0f} s") from None
            try:
                jobs = [await self._submit(http, n) for n in range(1, self._plan.jobs + 1)]
                await asyncio.gather(*(self._finish(http, j) for j in jobs))
                return [self.jobs[n] for n in sorted(self.jobs)]
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _submit(self, http: httpx.AsyncClient, number: int) -> JobRun:
        body: dict[str, Any] = {
            "client_id": self._client_id,
            "prompt": fresh_seeds(self._plan.workflow.prompt, self._rng),
        }
        if self._plan.workflow.graph is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": self._plan.workflow.graph}}
        job = JobRun(self._user, number, "socket", submitted=time.monotonic(), queued=time.time())
        try:
            answer = await http.post(f"/{self._user}/api/prompt", json=body)
        except httpx.HTTPError as exc:
            return self._failed(job, "network", f"Run {number}: {type(exc).__name__}: {exc}")
        if answer.status_code != 200:
            kind = {429: "limit", 400: "refused"}.get(answer.status_code, "http")
            return self._failed(job, kind, f"Run {number}: {error_message(answer)}")
        prompt_id = str(answer.json()["prompt_id"])
        self._waiting.setdefault(prompt_id, Waiting())
        self._say(self._user, f"queued {number}/{self._plan.jobs}")
        return self._keep(replace(job, prompt_id=prompt_id))

    def _keep(self, job: JobRun) -> JobRun:
        self.jobs[job.number] = job
        return job

    def _failed(self, job: JobRun, kind: str, message: str) -> JobRun:
        self._say(self._user, f"{kind}: {message}", problem=True)
        return self._keep(replace(job, problem=Problem(kind, self._user, message)))

    async def _finish(self, http: httpx.AsyncClient, job: JobRun) -> JobRun:
        if job.problem is not None or job.prompt_id is None:
            return job
        waiting = self._waiting[job.prompt_id]
        try:
            async with asyncio.timeout(self._plan.timeout):
                await self._wait(http, job.prompt_id, waiting)
        except TimeoutError:
            waited = f"{self._plan.timeout:.0f} s"
            return self._failed(job, "timeout", f"job {job.number}: no image after {waited}")
        job = self._keep(replace(job, started=waiting.started))
        if waiting.error is not None:
            return self._failed(job, "failed", f"job {job.number}: {waiting.error}")
        if not waiting.files:
            return self._failed(job, "no image", f"job {job.number}: finished without a file")
        try:
            await self._fetch(http, waiting.files)
        except (httpx.HTTPError, ValueError) as exc:
            return self._failed(job, "view", f"job {job.number}: {exc}")
        self._say(self._user, f"image {job.number}/{self._plan.jobs}", image=True)
        return self._keep(replace(job, image=time.monotonic()))

    async def _wait(self, http: httpx.AsyncClient, prompt_id: str, waiting: Waiting) -> None:
        while not waiting.done.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HISTORY_EVERY):
                    await waiting.done.wait()
            if not waiting.done.is_set():
                await self._ask_history(http, prompt_id, waiting)

    async def _ask_history(self, http: httpx.AsyncClient, prompt_id: str, waiting: Waiting) -> None:
        try:
            answer = await http.get(f"/{self._user}/api/history/{prompt_id}")
        except httpx.HTTPError:
            return  # asked again in a moment
        entry = answer.json().get(prompt_id) if answer.status_code == 200 else None
        if not isinstance(entry, dict):
            return
        status = entry.get("status") or {}
        if status.get("status_str") != "success":
            waiting.error = waiting.error or "failed (from its history entry)"
        for output in (entry.get("outputs") or {}).values():
            waiting.files += _files(output)
        waiting.done.set()

    async def _fetch(self, http: httpx.AsyncClient, files: list[dict[str, Any]]) -> None:
        for item in files:
            params = {k: str(item.get(k, "")) for k in ("filename", "subfolder", "type")}
            answer = await http.get(
                f"/{self._user}/api/view", params={**params, "rand": str(self._rng.random())}
            )
            if answer.status_code != 200 or not answer.content:
                raise ValueError(f"/api/view of {params['filename']} answered {answer.status_code}")

    async def _read_socket(self, http: httpx.AsyncClient) -> None:
        """The socket, reconnected with the same clientId when it drops (as the page does)."""
        url = self._plan.base.replace("http", "ws", 1) + f"/{self._user}/ws"
        while True:
            was_live = False
            try:
                async with websockets.connect(
                    f"{url}?clientId={self._client_id}",
                    additional_headers={"Cookie": session_cookie(http)},
                    open_timeout=SOCKET_TIMEOUT,
                    max_size=None,
                ) as socket:
                    was_live = True
                    await self._listen(socket)
                    why = "closed by the server"
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                why = type(exc).__name__
            if was_live:  # a live socket dropped (failed retries say nothing more)
                problem = Problem("socket", self._user, f"socket dropped ({why}), reconnecting")
                self.problems.append(problem)
                self._say(self._user, problem.message, problem=True)
            await asyncio.sleep(1.0)

    async def _listen(self, socket: ClientConnection) -> None:
        flags = {"supports_preview_metadata": True}
        await socket.send(json.dumps({"type": "feature_flags", "data": flags}))
        async for frame in socket:
            self._opened.set()
            if isinstance(frame, str):
                self._on_message(json.loads(frame))

    def _on_message(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("prompt_id"), str):
            return
        kind = message.get("type")
        waiting = self._waiting.setdefault(data["prompt_id"], Waiting())
        if kind == "execution_start":
            waiting.started = time.time()
            self._say(self._user, "running")
        elif kind == "progress" and data.get("max"):
            self._say(self._user, f"running {int(data['value'])}/{int(data['max'])}")
        elif kind == "executed":
            waiting.files += _files(data.get("output"))
        elif kind in ("execution_error", "execution_interrupted"):
            waiting.error = str(data.get("exception_message") or kind).strip()[:300]
            waiting.done.set()
        elif kind == "execution_success":
            waiting.done.set()


def _files(output: object) -> list[dict[str, Any]]:
    """The file items of a node's UI output (`images`, `gifs`, `video`, `audio`...)."""
    if not isinstance(output, dict):
        return []
    return [
        item
        for items in output.values()
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict) and "filename" in item
    ]
