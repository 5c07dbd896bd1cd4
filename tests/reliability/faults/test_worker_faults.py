"""The GPU side dies mid-job, for real: a worker agent SIGKILLed, its ComfyUI (the simulator
process) SIGKILLed, an agent restarted at once with the same token. The queue manager (a real
uvicorn on the private Redis) and three participants' pages, sockets open throughout, see it;
every test ends with the room's invariants (tests/reliability/support/invariants.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.jobs import JobStatus
from tests.reliability.support.fault_room import STEPS, FaultRoom, open_fault_room, run
from tests.reliability.support.invariants import Accepted
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

Opener = Callable[..., Awaitable[FaultRoom]]


@pytest.fixture
async def open_room(
    redis: Redis, redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[Opener]:
    """`await open_room(lease_seconds=..., ...)`: the room, with those settings."""
    async with AsyncExitStack() as stack:

        async def opened(**settings: float) -> FaultRoom:
            return await open_fault_room(
                stack, redis, redis_server, prefix, tmp_path, heartbeat_seconds=0.3, **settings
            )

        yield opened


async def test_an_agent_sigkilled_mid_job_loses_it_to_another_and_it_runs_once(
    open_room: Opener,
) -> None:
    room = await open_room(lease_seconds=1.5, worker_timeout_seconds=2)
    sims = await asyncio.gather(*(room.gpus.simulator(f"sim-{i}") for i in (1, 2)))
    doomed = await room.gpus.agent("doomed", room.url, await room.token("doomed"), sims[0])
    await room.gpus.agent("rescuer", room.url, await room.token("rescuer"), sims[1])
    await room.registered("doomed", "rescuer")
    await room.submit_all()
    lost = await room.caught_sampling(lambda j: j.worker == "doomed")
    await doomed.kill()
    await room.consistent()
    job = await room.job(lost.id)
    assert job.worker == "rescuer" and job.attempts == 2, job.timeline
    assert any("lease expired" in e.reason for e in job.timeline if e.to is JobStatus.QUEUED)


def two_saves(prefix: str) -> dict[str, Any]:
    """The default graph, then a second sampler on its latent saving under `prefix`-b: the
    first image is stored while the second one still samples."""
    prompt = run(prefix)
    prompt["13"] = {**prompt["3"], "inputs": {**prompt["3"]["inputs"], "latent_image": ["3", 0]}}
    prompt["13"]["inputs"]["seed"] = prompt["3"]["inputs"]["seed"] + 1
    prompt["13"]["inputs"]["steps"] = 4 * STEPS
    prompt["18"] = {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}}
    prompt["19"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["18", 0], "filename_prefix": f"{prefix}-b"},
    }
    return prompt


async def test_an_agent_sigkilled_after_storing_an_output_leaves_no_stray_copy_of_it(
    open_room: Opener,
) -> None:
    """Killed between one output stored in the participant's folder and the job's end: the job
    runs again elsewhere, and the folder holds that run's files only, not the lost one beside
    them (the invariants count every file of the job's prefixes)."""
    room = await open_room(lease_seconds=1.5, worker_timeout_seconds=2)
    sims = await asyncio.gather(*(room.gpus.simulator(f"sim-{i}") for i in (1, 2)))
    doomed = await room.gpus.agent("doomed", room.url, await room.token("doomed"), sims[0])
    await room.registered("doomed")
    page = room.pages[0]
    job_id = await page.submit(two_saves(f"f/{page.user}-two"))
    room.accepted.append(
        Accepted(job_id, page.user, outputs=2, max_attempts=2, client_id=page.client_id)
    )
    files = room.view.keys.job_files(job_id)

    async def one_stored() -> bool:
        return await room.view.redis.hlen(files) == 1

    await until(one_stored, 30, "the first output stored")
    assert (await room.job(job_id)).status is JobStatus.RUNNING
    await doomed.kill()
    await room.gpus.agent("rescuer", room.url, await room.token("rescuer"), sims[1])
    await room.consistent()
    job = await room.job(job_id)
    assert job.worker == "rescuer" and job.attempts == 2, job.timeline


async def test_its_comfyui_sigkilled_mid_job_the_agent_gives_it_back_and_it_runs_once_later(
    open_room: Opener,
) -> None:
    room = await open_room(lease_seconds=1.5, worker_timeout_seconds=2)
    sim_url = await room.gpus.simulator("sim")
    await room.gpus.agent("gpu", room.url, await room.token("gpu"), sim_url)
    await room.registered("gpu")
    await room.submit_all()
    interrupted = await room.caught_sampling()
    simulator = room.gpus.programs[0]
    await simulator.kill()

    async def given_back() -> bool:
        return any(
            e.to is JobStatus.QUEUED and "given back by worker gpu" in e.reason
            for e in (await room.job(interrupted.id)).timeline
        )

    await until(given_back, 30, "the job given back")
    await room.gpus.simulator("sim", port=int(sim_url.rsplit(":", 1)[1]))  # the box's restart
    await room.consistent()
    assert (await room.job(interrupted.id)).attempts == 2


async def test_an_agent_restarted_at_once_with_its_token_gives_its_job_back_at_once(
    open_room: Opener,
) -> None:
    # Leases far longer than the test: only the restart itself can give the job back.
    room = await open_room(lease_seconds=600, worker_timeout_seconds=600)
    sim_url = await room.gpus.simulator("sim")
    token = await room.token("gpu")
    first = await room.gpus.agent("gpu", room.url, token, sim_url)
    await room.registered("gpu")
    await room.submit_all()
    held = await room.caught_sampling()
    await first.kill()
    await room.gpus.agent("gpu", room.url, token, sim_url)
    await room.consistent()
    job = await room.job(held.id)
    requeued = [e.reason for e in job.timeline if e.to is JobStatus.QUEUED][1:]
    assert requeued == ["worker gpu restarted"], job.timeline
    assert job.attempts == 2
