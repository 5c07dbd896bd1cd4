"""What the burst test drives and measures: a whole local workshop whose passwords are cheap to
check, participants as the ComfyUI page acts (a login, one socket, prompts over HTTP), the
strict round-robin replayed from the event stream, the queue manager's memory sampled from
outside, and the figures printed at the end.

Run as a module (`python -m tests.reliability.burst_support up ...`) it is `comfy-workshop`
with the password hasher at its cheapest parameters, as the test session's in-process fixture
does (same code path, same hash format): at the production cost twenty logins at once take
half a minute on a loaded two-core machine, which measures Argon2, not the queue."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import math
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from argon2 import PasswordHasher
from websockets.asyncio.client import ClientConnection

from queue_manager.cli.main import main
from queue_manager.cli.redis_server import free_port
from queue_manager.core.events import FINAL, Event, EventType
from queue_manager.store import accounts
from tests.support.workshop import Workshop

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # every HTTP call and socket handshake; a loaded 2-core machine is slow, not dead


def start_workshop(
    data: Path, users: int, workers: int
) -> tuple[subprocess.Popen[bytes], Workshop]:
    """`comfy-workshop up` (this module run as it) on `data`, answering /readyz; stop it with
    `tests.support.workshop.stop_workshop`."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data / "up.log"
    argv = ["--port", str(port), "--data", str(data), "--users", str(users)]
    argv += ["--workers", str(workers), "--step-delay", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.burst_support", "up", *argv],
            cwd=ROOT,  # where `tests` imports from, whatever folder pytest was started in
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"comfy-workshop up did not start:\n{log.read_text()}")
        time.sleep(0.1)
    with (data / "credentials.csv").open() as rows:
        passwords = {r["user"]: r["password"] for r in csv.DictReader(rows)}
    return proc, Workshop(url, data, passwords, log)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class Frame:
    type: str
    job: str
    at: float  # time.time() in this process when the frame was read off the socket


class Answers:
    """Every HTTP answer any client of the test got (a response hook), to rule out 5xx."""

    def __init__(self) -> None:
        self.seen: list[Answer] = []

    async def hook(self, response: httpx.Response) -> None:
        request = response.request
        self.seen.append(Answer(request.method, request.url.path, response.status_code))

    def client(self, url: str) -> httpx.AsyncClient:
        # The page's own fetches send Origin; the server refuses a foreign one on POST.
        return httpx.AsyncClient(
            base_url=url,
            timeout=TIMEOUT,
            headers={"Origin": url},
            event_hooks={"response": [self.hook]},
        )

    def server_errors(self) -> list[Answer]:
        return [a for a in self.seen if a.status >= 500]


async def log_in(client: httpx.AsyncClient, name: str, password: str) -> None:
    """The login form: a session cookie, kept by the client for every later call."""
    r = await client.post("/login", data={"username": name, "password": password})
    assert r.status_code == 303, f"login of {name}: {r.status_code} {r.text[:200]}"
    assert "cw_session" in client.cookies, f"login of {name} set no session cookie"


class Participant:
    """One participant's page: logged in, its socket open (read all along), its Run clicks."""

    def __init__(self, url: str, name: str, password: str, answers: Answers) -> None:
        self.url = url
        self.name = name
        self.password = password
        self.http = answers.client(url)
        self.sid = uuid.uuid4().hex
        self.frames: list[Frame] = []
        self.jobs: list[str] = []
        self.closed: int | None = None  # the close code, if the server closed the socket
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await log_in(self.http, self.name, self.password)
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        ws_url = self.url.replace("http", "ws", 1) + f"/{self.name}/ws?clientId={self.sid}"
        self._ws = await websockets.connect(
            ws_url,
            additional_headers={"Cookie": cookie, "Origin": self.url},
            open_timeout=TIMEOUT,
            max_size=None,
        )
        first = json.loads(await asyncio.wait_for(self._ws.recv(), TIMEOUT))
        assert first["type"] == "status" and first["data"]["sid"] == self.sid, first
        self._reader = asyncio.create_task(self._read(self._ws))

    async def submit(self, prompt: dict[str, Any]) -> str:
        """A Run click: POST /<user>/api/prompt with this page's client id."""
        body = {"prompt": prompt, "client_id": self.sid, "extra_data": {}}
        r = await self.http.post(f"/{self.name}/api/prompt", json=body)
        assert r.status_code == 200, f"{self.name}: {r.status_code} {r.text[:300]}"
        job: str = r.json()["prompt_id"]
        self.jobs.append(job)
        return job

    def got(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f.type == kind]

    def finished(self) -> bool:
        return len({f.job for f in self.got("execution_success")}) >= len(self.jobs)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await asyncio.wait_for(self._ws.close(), TIMEOUT)
        await self.http.aclose()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                now = time.time()
                if isinstance(raw, bytes):
                    continue  # a preview frame: not measured
                message = json.loads(raw)
                data = message.get("data")
                job = data.get("prompt_id") if isinstance(data, dict) else None
                self.frames.append(Frame(message["type"], str(job or ""), now))
        finally:
            self.closed = ws.close_code


def unfair_claims(events: Iterable[Event], max_running: int) -> list[str]:
    """Replay the event stream and say every claim that was not strict round-robin's next job.

    Strict round-robin, as this replay rules it at each claim: among the users who have a
    waiting job and are under their running limit, the one served least recently gets their
    oldest waiting job; users never served yet go first, in the order they first queued. The
    stream is the one total order of every change (each script appends in the same step), so
    the rule is checked against exactly what was waiting and running at that claim.
    """
    waiting: dict[str, dict[str, int]] = {}  # user -> job -> seq
    first_seq: dict[str, int] = {}
    served: dict[str, int] = {}
    running: Counter[str] = Counter()
    seqs: dict[str, int] = {}
    owner: dict[str, str] = {}
    held: set[str] = set()
    wrong: list[str] = []
    for n, event in enumerate(events):
        job, user = str(event.job), str(event.user)
        if event.type is EventType.JOB_QUEUED:
            seqs[job], owner[job] = int(str(event.data["seq"])), user
            waiting.setdefault(user, {})[job] = seqs[job]
            first_seq.setdefault(user, seqs[job])
        elif event.type is EventType.JOB_CLAIMED:
            expected = _next_job(waiting, first_seq, served, running, max_running)
            if job != expected:
                wrong.append(f"claim of {job} ({user}): strict round-robin gives {expected}")
            waiting.get(user, {}).pop(job, None)
            running[user] += 1
            held.add(job)
            served[user] = n
        elif event.type is EventType.JOB_REQUEUED and job in held:
            held.discard(job)
            running[user] -= 1
            waiting.setdefault(user, {})[job] = seqs[job]
        elif event.type in FINAL:
            if job in held:
                held.discard(job)
                running[user] -= 1
            waiting.get(user, {}).pop(job, None)
    return wrong


def _next_job(
    waiting: dict[str, dict[str, int]],
    first_seq: dict[str, int],
    served: dict[str, int],
    running: Counter[str],
    max_running: int,
) -> str | None:
    limit = math.inf if max_running < 0 else max_running
    users = [u for u, jobs in waiting.items() if jobs and running[u] < limit]
    if not users:
        return None
    # never served: ahead of everyone served, by arrival; served: least recently first
    user = min(users, key=lambda u: (u in served, served.get(u, first_seq[u])))
    jobs = waiting[user]
    return min(jobs, key=jobs.__getitem__)


def rounds(claimed_users: list[str]) -> list[list[str]]:
    """The claim sequence cut into rounds: a round ends where a user would appear again."""
    out: list[list[str]] = [[]]
    for user in claimed_users:
        if user in out[-1]:
            out.append([])
        out[-1].append(user)
    return out


class Laps:
    """Wall time of the burst's phases, each from the end of the one before."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases.append((name, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return "; ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases)


@dataclass
class RssSampler:
    """The resident memory of one process, sampled from a thread every `every` seconds."""

    pid: int
    every: float = 0.02
    before: int = 0
    peak: int = 0
    after: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.before = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.after = self._rss()
        self.peak = max(self.peak, self.after)

    def _rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._rss())


def spread(values: list[float]) -> str:
    """p50/p90/max in milliseconds (nearest rank), and how many values."""
    if not values:
        return "no values"
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    return (
        f"p50 {rank(0.5):.1f} ms, p90 {rank(0.9):.1f} ms, max {ordered[-1] * 1000:.1f} ms "
        f"(n={len(ordered)})"
    )


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


if __name__ == "__main__":
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    sys.exit(main())
