"""GPU-side benchmark: the queue manager, a ComfyUI simulator and the worker agent as separate
processes on loopback, with a private redis-server.

  copy       a 500 MB output: simulator -> agent -> queue manager (MB/s, agent peak RSS), and
             the queue manager's upload path alone (a file PUT straight to it), each beside a
             plain file copy on the same disk (ratio)
  idle gap   a backlog of small jobs on one worker: time from a job finishing to the next one
             being claimed (p50/p99 ms, from the jobs' timelines), including the HTTP hop
Figures are printed, never asserted. Usage: python -m benchmarks.worker [--mb 500] [--jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.tokens import TokenStore

ROOT = Path(__file__).resolve().parent.parent
SMALL = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}},
}
BIG = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 0},
    },
    "2": {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["1", 0],
            "filename_prefix": "big",
            "fps": 6.0,
            "lossless": False,
            "quality": 80,
            "method": "default",
        },
    },
}


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def serve_queue_manager(work: Path, redis: RedisServer) -> tuple[subprocess.Popen[bytes], int]:
    """`comfy-workshop serve` on a free port over `redis`, no per-user limits (work/qm.log)."""
    port = free_port()
    env = {
        "CW_REDIS_URL": redis.url,
        "CW_DATA_DIR": str(work / "data"),
        "CW_PORT": str(port),
        "CW_MAX_QUEUED_PER_USER": "-1",
        "CW_MAX_RUNNING_PER_USER": "-1",
    }
    return spawn([sys.executable, "-m", "queue_manager", "serve"], env, work / "qm.log"), port


def serve_simulator(work: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    """A ComfyUI simulator on a free port, zero step delay (work/sim, work/sim.log)."""
    port = free_port()
    args = ["--port", str(port), "--data", str(work / "sim"), "--step-delay", "0", *options]
    command = [sys.executable, "-m", "queue_manager", "simulator", *args]
    return spawn(command, {}, work / "sim.log"), port


@dataclass(frozen=True)
class GpuRoom:
    """What `gpu_room` started: the service on its Redis, and where the processes answer."""

    svc: QueueService
    client: Redis
    manager: str  # the queue manager's URL
    comfyui: str  # the simulator's URL


@contextlib.asynccontextmanager
async def gpu_room(work: Path, *simulator_options: str) -> AsyncIterator[GpuRoom]:
    """A private redis-server, `comfy-workshop serve` and a ComfyUI simulator (zero step delay)
    as processes, no per-user limits, and a `QueueService` on the same Redis; all stopped when
    the block ends (agents the block started are its own to stop)."""
    redis = RedisServer(work / "redis", appendonly=False)
    redis.start()
    qm, qm_port = serve_queue_manager(work, redis)
    sim, sim_port = serve_simulator(work, *simulator_options)
    client = connect(redis.url)
    try:
        manager, comfyui = f"http://127.0.0.1:{qm_port}", f"http://127.0.0.1:{sim_port}"
        await wait_http(f"{manager}/readyz")
        await wait_http(f"{comfyui}/api/features")
        settings = Settings(redis_url=redis.url, max_queued_per_user=-1, max_running_per_user=-1)
        yield GpuRoom(QueueService(settings, client), client, manager, comfyui)
    finally:
        stop(sim)
        stop(qm)
        await client.aclose()
        redis.stop()


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(500):
            try:
                if (await c.get(url, timeout=1)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


async def pull_agent(
    svc: QueueService,
    client: Redis,
    name: str,
    manager: str,
    comfyui: str,
    work: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A worker agent process named `name` between `manager` and `comfyui` (its token made in
    Redis, more CW_WORKER_* settings in `env`), once it has registered."""
    token = await TokenStore(client, Keys("cw:")).create(WorkerId(name))
    agent = spawn(
        [sys.executable, "-m", "worker"],
        {
            "CW_WORKER_MANAGER_URL": manager,
            "CW_WORKER_TOKEN": token,
            "CW_WORKER_COMFYUI_URL": comfyui,
            "CW_WORKER_WORK_DIR": str(work / "agent"),
            **(env or {}),
        },
        work / f"agent-{name}.log",
    )
    while name not in [w.id for w in await svc.gpu_workers()]:  # noqa: ASYNC110 - another process
        await asyncio.sleep(0.02)
    return agent


async def finished(svc: QueueService, job_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (await svc.job(job_id)).status not in (  # type: ignore[arg-type]
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(job_id)
        await asyncio.sleep(0.01)


def plain_copy_mb_s(src: Path, work: Path) -> float:
    t0 = time.perf_counter()
    shutil.copyfile(src, work / "plain-copy.bin")
    os.sync()
    dt = time.perf_counter() - t0
    (work / "plain-copy.bin").unlink()
    return src.stat().st_size / 2**20 / dt


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, 1 << 20):
            yield block


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-wbench-", dir=ROOT.parent) as tmp:
        work = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            room = await stack.enter_async_context(
                gpu_room(work, "--large-output-bytes", str(a.mb * 2**20))
            )
            svc, client = room.svc, room.client
            agent = await pull_agent(svc, client, "bench", room.manager, room.comfyui, work)
            stack.callback(stop, agent)

            # 1. a big output through the whole path
            peak = 0.0
            big = await svc.submit(UserId("user001"), Lane.NORMAL, BIG)
            agent_ps = psutil.Process(agent.pid)
            t0 = time.perf_counter()
            done = asyncio.create_task(finished(svc, big.id))
            while not done.done():
                peak = max(peak, agent_ps.memory_info().rss / 2**20)
                await asyncio.sleep(0.01)
            await done
            job = await svc.job(big.id)
            size = sum(int(o.get("size", 0)) for o in job.outputs)  # type: ignore[call-overload]
            relay_s = (job.finished_at or 0) - (job.claimed_at or 0)
            src = next((work / "sim" / "output").rglob("big_*"))
            plain = plain_copy_mb_s(src, work)
            print(
                f"output relay (simulator -> agent -> queue manager): {size / 2**20:.0f} MB in "
                f"{relay_s:.2f} s incl. generating it = {size / 2**20 / relay_s:.0f} MB/s"
            )
            print(
                f"agent peak RSS during it: {peak:.1f} MiB; idle: "
                f"{agent_ps.memory_info().rss / 2**20:.1f} MiB"
            )

            # 2. the upload path alone, a job held by a test worker
            await svc.drain_worker(WorkerId("bench"), UserId("bench"))
            direct_token = await TokenStore(client, Keys("cw:")).create(WorkerId("direct"))
            headers = {"Authorization": f"Bearer {direct_token}"}
            async with httpx.AsyncClient(
                base_url=f"{room.manager}/worker/v1", headers=headers, timeout=None
            ) as http:
                await http.post("/register", json={"node_types": ["EmptyImage", "SaveImage"]})
                job2 = await svc.submit(UserId("user002"), Lane.NORMAL, SMALL)
                claimed = (await http.post("/claim", params={"wait": 5})).json()
                t0 = time.perf_counter()
                r = await http.put(
                    f"/jobs/{job2.id}/outputs",
                    content=chunks(src),
                    params={"attempt": claimed["attempt"], "filename": "direct.webp"},
                )
                os.sync()
                upload = src.stat().st_size / 2**20 / (time.perf_counter() - t0)
                r.raise_for_status()
            print(
                f"upload path alone: {upload:.0f} MB/s; plain file copy: {plain:.0f} MB/s; "
                f"ratio {upload / plain:.2f}x"
            )
            await svc.resume_worker(WorkerId("bench"), UserId("bench"))

            # 3. idle gap with a backlog, one worker
            ids = [
                (await svc.submit(UserId(f"user{i % 20 + 1:03d}"), Lane.NORMAL, SMALL)).id
                for i in range(a.jobs)
            ]
            t0 = time.perf_counter()
            for job_id in ids:
                await finished(svc, job_id)
            elapsed = time.perf_counter() - t0
            jobs = [await svc.job(j) for j in ids]
            jobs.sort(key=lambda j: j.claimed_at or 0)
            gaps = [
                ((b.claimed_at or 0) - (a_.finished_at or 0)) * 1000
                for a_, b in itertools.pairwise(jobs)
            ]
            gaps.sort()
            print(
                f"backlog of {a.jobs} small jobs, one worker: {a.jobs / elapsed:.1f} jobs/s; "
                f"idle gap finish -> next claim p50 {statistics.median(gaps):.2f} ms, "
                f"p99 {gaps[int(len(gaps) * 0.99) - 1]:.2f} ms"
            )
            print(f"agent RSS after the backlog: {agent_ps.memory_info().rss / 2**20:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
