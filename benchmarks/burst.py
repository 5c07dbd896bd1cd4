"""Burst benchmark: 20 participants x 10 jobs through 2 simulated GPUs on a whole
`comfy-workshop up` (its Redis, the queue manager, two simulators and two agents, real
processes), beside the same 200 prompts posted straight into two ComfyUI simulators (ComfyUI's
own queue: no accounts, no fairness, no manager hop, no output upload), same run.

  logins    20 login forms at once, at the production Argon2 cost (s; the queue manager's RSS
            peak while they run)
  submit    200 POST /<user>/api/prompt, the 20 pages at once, while the queue is paused (jobs/s)
  drain     resume -> every page's socket has read its 10 `execution_success` (s, and ms per job
            per GPU); the baseline: first POST -> all 200 `execution_success` read and every
            output fetched, 100 prompts per simulator
  latency   a worker's report taken in by the queue manager (the job record's started_at /
            finished_at) -> the page's socket reading `execution_start` / `execution_success`
            (p50/p90/max ms; one clock: this machine's wall clock)
  RSS       the queue manager (the `up` process): before the logins, peak during the burst
            (submit + drain), after
Medians of --repeats runs (min-max), baseline and ours interleaved; ratio ours / baseline.
Figures are printed, never asserted. Usage: python -m benchmarks.burst [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from benchmarks.worker import spawn, stop
from queue_manager.cli.redis_server import free_port

USERS, JOBS, GPUS = 20, 10, 2
TIMEOUT = 60.0


def prompt(name: str) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 0x3366CC},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": name}},
    }


class Socket:
    """A ComfyUI socket read all along: when each job's messages arrived, its outputs."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.arrived: dict[tuple[str, str], float] = {}
        self.outputs: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    def done(self) -> int:
        return sum(kind == "execution_success" for kind, _ in self.arrived)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.ws.close()

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.time()
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            data = message.get("data") or {}
            self.arrived[(message["type"], str(data.get("prompt_id")))] = now
            if message["type"] == "executed":
                self.outputs.extend((data.get("output") or {}).get("images") or [])


async def open_socket(url: str, sid: str, headers: dict[str, str]) -> Socket:
    ws = await websockets.connect(
        url.replace("http", "ws", 1) + f"?clientId={sid}",
        additional_headers=headers,
        open_timeout=TIMEOUT,
        max_size=None,
    )
    return Socket(ws)


class RssSampler:
    """The RSS of one process, sampled from a thread; `peak` since the last `reset`."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def reset(self) -> None:
        self.peak = self.rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.rss())


async def until(condition: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the burst did not finish")
        await asyncio.sleep(0.01)


async def ready(url: str, proc: Any) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.1)


# -- the baseline: two simulators, ComfyUI's own queue ----------------------------------------


async def baseline(work: Path) -> float:
    ports = [free_port() for _ in range(GPUS)]
    work.mkdir(parents=True)
    procs = [
        spawn(
            [sys.executable, "-m", "worker.simulator", "--port", str(port), *_sim_args(work, i)],
            {},
            work / f"sim-{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, proc in zip(urls, procs, strict=True):
            await ready(f"{url}/system_stats", proc)
        return await _straight(urls)
    finally:
        for proc in procs:
            stop(proc)


def _sim_args(work: Path, i: int) -> list[str]:
    return ["--data", str(work / f"sim-{i}"), "--step-delay", "0"]


async def _straight(urls: list[str]) -> float:
    sids = [uuid.uuid4().hex for _ in urls]
    sockets = [await open_socket(f"{u}/ws", s, {}) for u, s in zip(urls, sids, strict=True)]
    clients = [httpx.AsyncClient(base_url=u, timeout=TIMEOUT) for u in urls]
    fetched: list[int] = []
    try:
        began = time.monotonic()

        async def feed(client: httpx.AsyncClient, sid: str, socket: Socket) -> None:
            for k in range(USERS * JOBS // GPUS):
                body = {"prompt": prompt(f"base/{k}"), "client_id": sid}
                (await client.post("/prompt", json=body)).raise_for_status()
            await until(lambda: socket.done() == USERS * JOBS // GPUS)
            for out in socket.outputs:
                fetched.append(len((await client.get("/view", params=out)).content))

        await asyncio.gather(*(feed(*x) for x in zip(clients, sids, sockets, strict=True)))
        assert len(fetched) == USERS * JOBS, len(fetched)
        return time.monotonic() - began
    finally:
        for socket in sockets:
            await socket.close()
        for client in clients:
            await client.aclose()


# -- ours: a whole comfy-workshop up ----------------------------------------------------------


class Page:
    """A participant's ComfyUI page: logged in with the form, its socket, its Run clicks."""

    def __init__(self, url: str, name: str, password: str) -> None:
        self.url, self.name, self.password = url, name, password
        self.http = httpx.AsyncClient(base_url=url, timeout=TIMEOUT, headers={"Origin": url})
        self.sid = uuid.uuid4().hex
        self.jobs: list[str] = []
        self.socket: Socket | None = None

    async def log_in(self) -> None:
        form = {"username": self.name, "password": self.password}
        assert (await self.http.post("/login", data=form)).status_code == 303

    async def open(self) -> None:
        await self.log_in()
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        headers = {"Cookie": cookie, "Origin": self.url}
        self.socket = await open_socket(f"{self.url}/{self.name}/ws", self.sid, headers)

    async def click_run(self) -> None:
        for k in range(JOBS):
            body = {"prompt": prompt(f"burst/{k}"), "client_id": self.sid}
            r = await self.http.post(f"/{self.name}/api/prompt", json=body)
            assert r.status_code == 200, r.text
            self.jobs.append(r.json()["prompt_id"])

    def done(self) -> int:
        return self.socket.done() if self.socket else 0

    async def close(self) -> None:
        if self.socket:
            await self.socket.close()
        await self.http.aclose()


async def ours(work: Path) -> dict[str, float]:
    port = free_port()
    argv = ["--port", str(port), "--data", str(work), "--users", str(USERS)]
    argv += ["--workers", str(GPUS), "--step-delay", "0"]
    work.mkdir(parents=True)
    proc = spawn([sys.executable, "-m", "queue_manager", "up", *argv], {}, work / "up.log")
    try:
        url = f"http://127.0.0.1:{port}"
        await ready(f"{url}/readyz", proc)
        with (work / "credentials.csv").open() as rows:
            passwords = {r["user"]: r["password"] for r in csv.DictReader(rows)}
        return await _burst(url, passwords, RssSampler(proc.pid))
    finally:
        stop(proc)


async def _burst(url: str, passwords: dict[str, str], memory: RssSampler) -> dict[str, float]:
    admin = Page(url, "instructor", passwords["instructor"])
    pages = [Page(url, f"user{i:03d}", passwords[f"user{i:03d}"]) for i in range(1, USERS + 1)]
    try:
        await admin.log_in()
        await _workers_online(admin.http)
        assert (await admin.http.post("/admin/api/queue/pause")).status_code == 200
        figures = {"rss_before": memory.rss() / 2**20}
        began = time.monotonic()
        await asyncio.gather(*(p.open() for p in pages))
        figures |= {"logins_s": time.monotonic() - began, "rss_logins": memory.peak / 2**20}
        memory.reset()
        began = time.monotonic()
        await asyncio.gather(*(p.click_run() for p in pages))
        figures["submit_per_s"] = USERS * JOBS / (time.monotonic() - began)
        began = time.monotonic()
        assert (await admin.http.post("/admin/api/queue/resume")).status_code == 200
        await until(lambda: all(p.done() == JOBS for p in pages))
        figures["drain_s"] = time.monotonic() - began
        figures |= {"rss_peak": memory.peak / 2**20, "rss_after": memory.rss() / 2**20}
        return figures | await _latencies(admin.http, pages)
    finally:
        memory.stop()
        for p in [admin, *pages]:
            await p.close()


async def _workers_online(admin: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 120
    while True:
        state = (await admin.get("/admin/api/state")).json()
        if sum(w["state"] == "online" for w in state["workers"]) == GPUS:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not come online")
        await asyncio.sleep(0.1)


async def _latencies(admin: httpx.AsyncClient, pages: list[Page]) -> dict[str, float]:
    """Socket arrival minus the queue manager's record of the report, per job."""
    started, done = [], []
    for page in pages:
        assert page.socket is not None
        for job in page.jobs:
            record = (await admin.get(f"/admin/api/jobs/{job}")).json()
            started.append(page.socket.arrived[("execution_start", job)] - record["started_at"])
            done.append(page.socket.arrived[("execution_success", job)] - record["finished_at"])
    return {
        **{f"start_{k}": v for k, v in spread(started).items()},
        **{f"success_{k}": v for k, v in spread(done).items()},
    }


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    return {"p50_ms": rank(0.5), "p90_ms": rank(0.9), "max_ms": ordered[-1] * 1000}


# -- the report -------------------------------------------------------------------------------


def show(name: str, values: list[float], unit: str) -> str:
    med = statistics.median(values)
    return f"  {name:<34} {med:9.1f} {unit:<6} ({min(values):.1f}-{max(values):.1f})"


def report(runs: list[dict[str, float]]) -> None:
    per_job = 1000 * GPUS / (USERS * JOBS)
    for run in runs:
        run["drain_ms_per_job"] = run["drain_s"] * per_job
        run["base_ms_per_job"] = run["base_s"] * per_job
        run["ratio"] = run["drain_s"] / run["base_s"]
    rows = [
        ("20 logins at once (Argon2)", "logins_s", "s"),
        ("  queue manager RSS peak", "rss_logins", "MiB"),
        ("200 submissions, 20 pages at once", "submit_per_s", "jobs/s"),
        ("drain: ours", "drain_s", "s"),
        ("drain: baseline (straight to sims)", "base_s", "s"),
        ("per job per GPU: ours", "drain_ms_per_job", "ms"),
        ("per job per GPU: baseline", "base_ms_per_job", "ms"),
        ("ratio ours / baseline", "ratio", "x"),
        ("queue manager RSS before", "rss_before", "MiB"),
        ("queue manager RSS peak (burst)", "rss_peak", "MiB"),
        ("queue manager RSS after", "rss_after", "MiB"),
    ] + [
        (f"{label} {q}", f"{key}_{q}_ms", "ms")
        for label, key in (("execution_start", "start"), ("execution_success", "success"))
        for q in ("p50", "p90", "max")
    ]
    print(f"burst {USERS} x {JOBS} through {GPUS} simulated GPUs, {len(runs)} run(s):")
    for name, key, unit in rows:
        print(show(name, [r[key] for r in runs], unit))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.repeats):
            base = await baseline(Path(tmp) / f"base-{n}")
            runs.append(await ours(Path(tmp) / f"ours-{n}") | {"base_s": base})
            print(f"run {n + 1}: ours {runs[-1]['drain_s']:.1f} s, baseline {base:.1f} s")
    report(runs)


if __name__ == "__main__":
    asyncio.run(main())
