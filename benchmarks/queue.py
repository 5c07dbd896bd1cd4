"""Queue benchmark: our queue beside saq, taskiq and the minimal reference queue, same run.

For each system, on one private redis-server (no AOF), a worker process with one slot:
  enqueue    jobs/s, one awaited enqueue after another, no worker running
  dispatch   submit -> the blocked worker has the job (p50/p99 ms), open loop at 50 jobs/s
  idle gap   per-job time of a one-slot worker draining a backlog of no-op jobs (ms/job)
  commands   Redis commands per job (producer + worker; MONITOR; inside Lua counted apart)
  RSS        of the worker process (tree) after the backlog, MiB
Job starts are recorded out of band (benchmarks/record.py), as in shared/bench-reference.
Figures are printed, never asserted. Usage: python -m benchmarks.queue [--repeats N]
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import uvloop
from redis.asyncio import Redis

from benchmarks import record
from benchmarks.peers import raw_queue
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Lane
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROMPT = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "bench"}}}


class System(abc.ABC):
    name = "?"

    @abc.abstractmethod
    def worker_argv(self) -> list[str]: ...

    @abc.abstractmethod
    async def open(self, url: str) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def enqueue(self, tag: str) -> None: ...


class Ours(System):
    name = "ours"

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.peers.ours_worker"]

    async def open(self, url: str) -> None:
        self.redis = connect(url)
        settings = Settings(redis_url=url, max_queued_per_user=-1, max_running_per_user=-1)
        self.svc = QueueService(settings, self.redis)
        await self.svc.initialize()
        self.n = 0

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, tag: str) -> None:
        self.n += 1
        user = UserId(f"user{self.n % 20 + 1:03d}")
        await self.svc.submit(user, Lane.NORMAL, PROMPT, job_id=JobId(tag))


class Raw(System):
    name = "raw"
    loop = "asyncio"

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.peers.raw_queue", self.loop]

    async def open(self, url: str) -> None:
        self.redis = Redis.from_url(url)
        self.script = self.redis.register_script(raw_queue.ENQUEUE)

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(self, tag: str) -> None:
        await self.script(keys=["raw:job:" + tag, "raw:q"], args=[json.dumps({"id": tag})])


class RawUvloop(Raw):
    name = "raw-uvloop"
    loop = "uvloop"


class Saq(System):
    name = "saq"

    def worker_argv(self) -> list[str]:
        return [str(BIN / "saq"), "benchmarks.peers.saq_jobs.settings"]

    async def open(self, url: str) -> None:
        from saq import Queue

        self.q = Queue.from_url(url, name="bench")
        await self.q.connect()

    async def close(self) -> None:
        await self.q.disconnect()

    async def enqueue(self, tag: str) -> None:
        await self.q.enqueue("noop", tag=tag)


class Taskiq(System):
    name = "taskiq"

    def worker_argv(self) -> list[str]:
        return [
            str(BIN / "taskiq"),
            "worker",
            "benchmarks.peers.taskiq_jobs:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            "1",
            "--log-level",
            "WARNING",
        ]

    async def open(self, url: str) -> None:
        from benchmarks.peers import taskiq_jobs

        self.mod = taskiq_jobs
        await taskiq_jobs.broker.startup()

    async def close(self) -> None:
        await self.mod.broker.shutdown()

    async def enqueue(self, tag: str) -> None:
        await self.mod.noop.kiq(tag)


SYSTEMS: dict[str, type[System]] = {
    "ours": Ours,
    "raw": Raw,
    "raw-uvloop": RawUvloop,
    "saq": Saq,
    "taskiq": Taskiq,
}


@dataclass
class Worker:
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def rss_mib(self) -> float:
        assert self.proc is not None
        p = psutil.Process(self.proc.pid)
        return max(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def wait_recorded(path: str, tags: set[str], timeout: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen = record.read(path)
        if tags <= seen.keys():
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(tags & seen.keys())}/{len(tags)} jobs started")
        await asyncio.sleep(0.005)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


async def measure(
    system: System, server: RedisServer, work: Path, args: argparse.Namespace
) -> dict[str, float]:
    admin = Redis.from_url(server.url)
    rec = str(work / f"{system.name}.rec")
    env = {
        **os.environ,
        "BENCH_REDIS_URL": server.url,
        "BENCH_RECORD": rec,
        "PYTHONPATH": str(ROOT),
    }
    log = work / f"{system.name}.log"
    out: dict[str, float] = {}
    await admin.flushall()
    Path(rec).unlink(missing_ok=True)
    await system.open(server.url)
    try:
        # enqueue, no worker
        for _ in range(50):
            await system.enqueue(str(uuid.uuid4()))
        t0 = time.perf_counter()
        for _ in range(args.enqueue_n):
            await system.enqueue(str(uuid.uuid4()))
        out["enqueue_per_s"] = args.enqueue_n / (time.perf_counter() - t0)
        await system.close()
        await admin.flushall()
        await system.open(server.url)

        worker = Worker(system.worker_argv(), env, log)
        worker.start()
        try:
            warm = {str(uuid.uuid4()) for _ in range(20)}
            for tag in warm:
                await system.enqueue(tag)
            await wait_recorded(rec, warm)
            await asyncio.sleep(0.5)

            # dispatch latency, open loop at 50 jobs/s on an idle system
            sent: dict[str, float] = {}
            n = args.rate * args.seconds
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tag = str(uuid.uuid4())
                sent[tag] = time.time()
                await system.enqueue(tag)
            seen = await wait_recorded(rec, set(sent))
            lat = [(seen[t] - sent[t]) * 1000 for t in sent]
            out["dispatch_p50_ms"] = pct(lat, 50)
            out["dispatch_p99_ms"] = pct(lat, 99)

            # commands per job, worker running, one enqueue after another
            mon_path = work / f"{system.name}.monitor"
            with open(mon_path, "w") as mf:
                mon = subprocess.Popen(
                    ["redis-cli", "-p", str(server.port), "monitor"],
                    stdout=mf,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(0.3)
                t_from = time.time()
                tags = {str(uuid.uuid4()) for _ in range(args.cmd_n)}
                for tag in tags:
                    await system.enqueue(tag)
                await wait_recorded(rec, tags)
                await asyncio.sleep(0.2)
                t_to = time.time()
                mon.terminate()
                mon.wait()
            net, lua = count_monitor(mon_path, t_from, t_to)
            out["cmds_per_job"] = net / args.cmd_n
            out["lua_cmds_per_job"] = lua / args.cmd_n
            mon_path.unlink()
        finally:
            worker.stop()

        # idle gap: a backlog, then a fresh one-slot worker drains it
        backlog = [str(uuid.uuid4()) for _ in range(args.backlog_n)]
        for tag in backlog:
            await system.enqueue(tag)
        worker = Worker(system.worker_argv(), env, log)
        worker.start()
        try:
            seen = await wait_recorded(rec, set(backlog), timeout=120)
            starts = sorted(seen[t] for t in backlog)
            out["idle_gap_ms"] = (starts[-1] - starts[0]) * 1000 / (len(starts) - 1)
            out["worker_rss_mib"] = worker.rss_mib()
        finally:
            worker.stop()
    finally:
        await system.close()
        await admin.aclose()
    return out


def count_monitor(path: Path, t_from: float, t_to: float) -> tuple[int, int]:
    net = lua = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            ts = float(line.split(" ", 1)[0])
        except ValueError:
            continue
        if not t_from <= ts <= t_to:
            continue
        if " lua]" in line:
            lua += 1
        else:
            net += 1
    return net, lua


async def positions_cost(server: RedisServer) -> float:
    """ms to compute every waiting job's position with 20 users x 10 queued jobs."""
    redis = connect(server.url)
    await redis.flushall()
    svc = QueueService(Settings(redis_url=server.url, max_queued_per_user=-1), redis)
    await svc.initialize()
    for i in range(200):
        await svc.submit(UserId(f"user{i % 20 + 1:03d}"), Lane.NORMAL, PROMPT)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        await svc.positions()
        times.append((time.perf_counter() - t0) * 1000)
    await redis.aclose()
    return statistics.median(times)


COLUMNS = [
    ("enqueue_per_s", "enqueue jobs/s", "{:,.0f}"),
    ("dispatch_p50_ms", "dispatch p50 ms", "{:.2f}"),
    ("dispatch_p99_ms", "dispatch p99 ms", "{:.2f}"),
    ("idle_gap_ms", "idle gap ms/job", "{:.2f}"),
    ("cmds_per_job", "cmds/job", "{:.1f}"),
    ("lua_cmds_per_job", "+in Lua/job", "{:.1f}"),
    ("worker_rss_mib", "worker RSS MiB", "{:.1f}"),
]


def table(results: dict[str, dict[str, list[float]]]) -> str:
    head = "| system | " + " | ".join(c[1] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    med = {s: {k: statistics.median(v) for k, v in r.items()} for s, r in results.items()}
    for s, r in results.items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = r[key]
            cell = fmt.format(statistics.median(v))
            if len(v) > 1:
                cell += f" ({fmt.format(min(v))}-{fmt.format(max(v))})"
            cells.append(cell)
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    if "ours" in med:
        for s in med:
            if s == "ours":
                continue
            ratios = [
                f"{med['ours'][k] / med[s][k]:.2f}x" if med[s][k] else "-" for k, _, _ in COLUMNS
            ]
            rows.append(f"| ours / {s} | " + " | ".join(ratios) + " |")
    return "\n".join(rows)


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--systems", default="ours,raw,raw-uvloop,saq,taskiq")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--enqueue-n", type=int, default=3000)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--backlog-n", type=int, default=2000)
    ap.add_argument("--cmd-n", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-bench-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis", appendonly=False)
        server.start()
        os.environ["BENCH_REDIS_URL"] = server.url  # the peers' producer modules read it too
        try:
            results: dict[str, dict[str, list[float]]] = {}
            for rep in range(args.repeats):
                for name in args.systems.split(","):
                    r = await measure(SYSTEMS[name](), server, work, args)
                    for k, v in r.items():
                        results.setdefault(name, {}).setdefault(k, []).append(v)
                    print(
                        f"[{rep + 1}/{args.repeats}] {name}: "
                        + ", ".join(f"{k}={v:.2f}" for k, v in r.items()),
                        flush=True,
                    )
            print()
            print(table(results))
            cost = await positions_cost(server)
            print(f"\npositions of 200 waiting jobs (20 users): {cost:.2f} ms (median of 200)")
            mem = psutil.virtual_memory().total / 2**30
            print(
                f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, Python {sys.version.split()[0]}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    # The producer side runs on uvloop for every system alike: the queue manager serves under
    # uvicorn, which picks uvloop, so that is the loop our submit path really runs on.
    uvloop.run(main())
