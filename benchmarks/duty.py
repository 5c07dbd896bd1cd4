"""GPU duty cycle with a backlog: the fraction of wall time the ComfyUI is executing a prompt.

One worker agent pulls a backlog of ~2 s jobs (the default text-to-image graph, 20 sampler
steps of --step-delay each, saved as an animated WEBP of --output-mb) from a queue manager, all
separate processes on loopback with a private redis-server. The simulator's own history says
when each prompt started and ended executing (`execution_start` / `execution_success`
timestamps, as ComfyUI records them); duty = executing time / (last end - first start). The
agent runs twice: as it is (`prefetch` 1: the next job already waits in ComfyUI's queue) and
with `CW_WORKER_PREFETCH=0` (it claims only when ComfyUI is idle, as before issue 16; the last
job's outputs are still copied while the next one runs).

Beside it, in the same run and on the same simulator: the physical limit, a plain loop that puts
the whole backlog into the simulator's own queue at once (ComfyUI starts the next prompt the
instant one ends), and one slot of an endpoint of kind comfyui (the queue manager pushing to
the same simulator), with `prefetch=1` (the next job posted into ComfyUI's queue while one
runs) and without. Figures are printed, never asserted.

  python -m benchmarks.duty [--jobs 12] [--step-delay 0.1] [--output-mb 1 --output-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.worker import ROOT, finished, pull_agent, spawn, stop, wait_http
from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.core.endpoints import endpoint
from queue_manager.core.ids import UserId
from queue_manager.core.jobs import Lane
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from tests.support.graphs import sampler


def job(seed: int) -> dict[str, Any]:
    """The default graph, saved as an animated WEBP; a fresh seed each time (ComfyUI, and the
    simulator, would otherwise reuse cached nodes)."""
    prompt = sampler(20)
    prompt["3"]["inputs"]["seed"] = seed
    prompt["9"] = {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["8", 0],
            "filename_prefix": "duty",
            "fps": 6.0,
            "lossless": False,
            "quality": 80,
            "method": "default",
        },
    }  # an output of --large-output-bytes (the simulator's video/animated saves)
    return prompt


async def executing(sim: str, prompt_ids: set[str] | None = None) -> list[tuple[float, float]]:
    """(start, end) in seconds of each prompt the simulator executed (of `prompt_ids`)."""
    async with httpx.AsyncClient(timeout=30) as http:
        history = (await http.get(f"{sim}/history", params={"max_items": 100_000})).json()
    spans = []
    for prompt_id, entry in history.items():
        if prompt_ids is not None and prompt_id not in prompt_ids:
            continue
        stamps = {kind: data.get("timestamp") for kind, data in entry["status"]["messages"]}
        start, end = stamps.get("execution_start"), stamps.get("execution_success")
        if start is not None and end is not None:
            spans.append((start / 1000, end / 1000))
    return sorted(spans)


def duty(spans: list[tuple[float, float]]) -> tuple[float, float]:
    """(duty cycle, mean gap between one end and the next start in ms)."""
    busy = sum(end - start for start, end in spans)
    wall = spans[-1][1] - spans[0][0]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    return busy / wall, 1000 * sum(gaps) / max(1, len(gaps))


async def plain_loop(sim: str, jobs: int) -> list[tuple[float, float]]:
    """The whole backlog into the simulator's own queue at once; its spans when all are done."""
    client_id = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=30) as http:
        ids = set()
        for n in range(jobs):
            answer = await http.post(
                f"{sim}/prompt", json={"prompt": job(10_000 + n), "client_id": client_id}
            )
            answer.raise_for_status()
            ids.add(answer.json()["prompt_id"])
        while True:
            queue = (await http.get(f"{sim}/queue")).json()
            if not queue["queue_running"] and not queue["queue_pending"]:
                break
            await asyncio.sleep(0.05)
    return await executing(sim, ids)


async def one_size(work: Path, jobs: int, step_delay: float, output_mb: int) -> None:
    redis = RedisServer(work / "redis", appendonly=False)
    redis.start()
    qm_port, sim_port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    qm = spawn(
        [sys.executable, "-m", "queue_manager", "serve"],
        {
            "CW_REDIS_URL": redis.url,
            "CW_DATA_DIR": str(work / "data"),
            "CW_PORT": str(qm_port),
            "CW_MAX_QUEUED_PER_USER": "-1",
            "CW_MAX_RUNNING_PER_USER": "-1",
        },
        work / "qm.log",
    )
    simulator = spawn(
        [sys.executable, "-m", "queue_manager", "simulator", "--port", str(sim_port), "--data",
         str(work / "sim"), "--step-delay", str(step_delay), "--large-output-bytes",
         str(output_mb * 2**20)],
        {},
        work / "sim.log",
    )  # fmt: skip
    agent = None
    client = connect(redis.url)
    try:
        await wait_http(f"http://127.0.0.1:{qm_port}/readyz")
        await wait_http(f"{sim}/api/features")
        settings = Settings(redis_url=redis.url, max_queued_per_user=-1, max_running_per_user=-1)
        svc = QueueService(settings, client)
        figures = {}
        for prefetch in (0, 1):
            agent = await pull_agent(
                svc, client, f"duty{prefetch}", f"http://127.0.0.1:{qm_port}", sim, work,
                {"CW_WORKER_PREFETCH": str(prefetch)},
            )  # fmt: skip
            ids = {
                (await svc.submit(UserId(f"user{n % 20 + 1:03d}"), Lane.NORMAL, job(n))).id
                for n in range(prefetch * jobs, (prefetch + 1) * jobs)
            }
            for job_id in ids:
                await finished(svc, job_id, timeout=60 + jobs * 30)
            figures[prefetch] = duty(await executing(sim, ids))
            stop(agent)
            agent = None
        slots = {}
        for prefetch in (0, 1):
            name = f"duty{prefetch}"
            config = endpoint(name, sim, prefetch=prefetch)
            await svc.add_endpoint(config, UserId("instructor"))
            while not any(  # registered with the catalogue it learnt  # noqa: ASYNC110
                w.id == f"{name}.1" and w.reports_models for w in await svc.gpu_workers()
            ):
                await asyncio.sleep(0.05)
            ids = {
                (await svc.submit(UserId(f"user{n % 20 + 1:03d}"), Lane.NORMAL, job(n))).id
                for n in range((2 + prefetch) * jobs, (3 + prefetch) * jobs)
            }
            for job_id in ids:
                await finished(svc, job_id, timeout=60 + jobs * 30)
            slots[prefetch] = duty(await executing(sim, ids))
            await svc.remove_endpoint(name, UserId("instructor"))
        limit, limit_gap = duty(await plain_loop(sim, jobs))
        (idle, idle_gap), (ours, ours_gap) = figures[0], figures[1]
        print(
            f"{jobs} jobs of {20 * step_delay:.1f} s, {output_mb} MB outputs, one worker: "
            f"duty {ours:.2%} (idle {ours_gap:.0f} ms between jobs); claiming only when idle "
            f"(prefetch 0) {idle:.2%} ({idle_gap:.0f} ms); the simulator's own queue fed at "
            f"once {limit:.2%} ({limit_gap:.0f} ms); ours / limit {ours / limit:.3f}, "
            f"prefetch 0 / limit {idle / limit:.3f}"
        )
        (slot0, slot0_gap), (slot1, slot1_gap) = slots[0], slots[1]
        print(
            f"  one endpoint slot (kind comfyui, the same simulator): prefetch=1 duty "
            f"{slot1:.2%} (idle {slot1_gap:.0f} ms between jobs), prefetch 0 {slot0:.2%} "
            f"({slot0_gap:.0f} ms); slot / limit {slot1 / limit:.3f}, prefetch 0 / limit "
            f"{slot0 / limit:.3f}"
        )
    finally:
        for proc in (agent, simulator, qm):
            if proc is not None:
                stop(proc)
        await client.aclose()
        redis.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--step-delay", type=float, default=0.1, help="seconds per sampler step")
    ap.add_argument("--output-mb", type=int, action="append", help="default: 1 and 100")
    a = ap.parse_args()
    for size in a.output_mb or [1, 100]:
        with tempfile.TemporaryDirectory(prefix="cw-duty-", dir=ROOT.parent) as tmp:
            await one_size(Path(tmp), a.jobs, a.step_delay, size)


if __name__ == "__main__":
    asyncio.run(main())
