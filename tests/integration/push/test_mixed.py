"""Pull workers and push endpoints serving one queue: one claim, one fair order, each job run
once, wherever it ran."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from queue_manager.core.ids import WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import Room
from tests.support.graphs import sampler
from tests.support.jobs import user
from tests.support.simulator import serve_simulator
from tests.support.waiting import until
from worker.agent import Agent
from worker.comfy_client import ComfyClient
from worker.manager_client import ManagerClient
from worker.settings import WorkerSettings
from worker.simulator.runtime import SimulatorConfig


async def test_a_pull_worker_and_an_endpoint_share_one_fair_queue(room: Room) -> None:
    config = SimulatorConfig(step_delay=0.02)
    async with (
        serve_simulator(room.tmp / "pull-sim", config) as pull_sim,
        serve_simulator(room.tmp / "push-sim", config) as push_sim,
    ):
        token = await room.tokens.create(WorkerId("gpu1"))
        settings = WorkerSettings(
            manager_url=room.qm_url,
            token=token,
            comfyui_url=pull_sim.url,
            heartbeat_seconds=0.3,
            claim_wait_seconds=1,
            work_dir=room.tmp / "agent",
        )
        manager, comfy = ManagerClient(settings), ComfyClient(pull_sim.url, 10)
        agent = Agent(settings, manager, comfy)
        pulling = asyncio.create_task(agent.run())
        try:
            await room.add("cloud", push_sim.url)
            workers = {"gpu1", "cloud.1"}

            async def both_joined() -> bool:
                return workers <= {w.id for w in await room.service.gpu_workers()}

            await until(both_joined, 20, "the pull worker and the endpoint slot joined")
            ids = [
                (await room.service.submit(user(n), Lane.NORMAL, sampler(steps=4))).id
                for _ in range(3)
                for n in range(1, 5)
            ]
            jobs = [await room.finished(job_id, timeout=60) for job_id in ids]
        finally:
            agent.drain()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pulling, 30)
            await manager.aclose()
            await comfy.aclose()
    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 12
    assert all(j.attempts == 1 for j in jobs)
    ran = Counter(str(j.worker) for j in jobs)
    assert set(ran) == workers, ran  # both took part
    # Fair across both: every user's first job was claimed before anyone's second.
    claimed = sorted(jobs, key=lambda j: j.claimed_at or 0)
    assert {j.user for j in claimed[:4]} == {user(n) for n in range(1, 5)}
    for n in range(1, 5):
        assert len(list((room.data / f"outputs/user{n:03d}").rglob("*.png"))) == 3
