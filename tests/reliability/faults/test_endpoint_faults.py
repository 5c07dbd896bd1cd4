"""A push endpoint loses a replica mid-job, with several participants' jobs in flight and their
pages open throughout; every test ends with the room's invariants.

Two ways a replica is lost, as real as the simulator allows:

* The serverless endpoint (`python -m worker.simulator --replicas 3`: a round-robin balancer
  in front of replicas, shared mounts) runs as its own process, and one replica is killed
  through its control API (`POST /_sim/replicas/{k}/kill`). The replicas are uvicorn servers
  inside that process, not processes of their own, so this is the platform reclaiming a
  container: its server stops, its sockets close, its running prompt is lost; the balancer
  sends the next requests elsewhere.
* Two single-replica endpoints, each a simulator process: one is SIGKILLed mid-job (the
  replica's machine is gone) and comes back later, on the same address.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId
from queue_manager.push.comfyui import prompt_id_of
from tests.reliability.support.fault_room import FaultRoom, open_fault_room
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

STEPS = 30  # long enough to catch a prompt on its replica before it ends

Opener = Callable[[], Awaitable[FaultRoom]]


@pytest.fixture
async def open_room(
    redis: Redis, redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[Opener]:
    async with AsyncExitStack() as stack:

        async def opened() -> FaultRoom:
            return await open_fault_room(
                stack,
                redis,
                redis_server,
                prefix,
                tmp_path,
                lease_seconds=3,
                heartbeat_seconds=0.3,
                worker_timeout_seconds=3,
                claim_wait_seconds=1,
                endpoint_poll_seconds=0.1,
                endpoint_lost_seconds=3,
                endpoint_request_seconds=5,
            )

        yield opened


async def replicas(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await http.get("/_sim/replicas")
    r.raise_for_status()
    found: list[dict[str, Any]] = r.json()["replicas"]
    return found


async def test_a_serverless_replica_lost_mid_job_costs_nothing_and_runs_nothing_twice(
    open_room: Opener, tmp_path: Path
) -> None:
    room = await open_room()
    mounts = {"inputs": tmp_path / "mount/input", "outputs": tmp_path / "mount/output"}
    for folder in mounts.values():
        folder.mkdir(parents=True)
    flags = ["--replicas", "3", "--shared-inputs", str(mounts["inputs"])]
    flags += ["--shared-outputs", str(mounts["outputs"])]
    url = await room.gpus.simulator("cloud", None, 0.05, *flags)
    await room.add_endpoint("cloud", url, slots=3, **{k: str(v) for k, v in mounts.items()})
    await room.submit_all(steps=STEPS)
    ours = {a.job_id for a in room.accepted}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        victim: list[dict[str, Any]] = []

        async def running_one_of_ours() -> bool:
            victim[:] = [r for r in await replicas(http) if r["running"] in ours][:1]
            return bool(victim)

        await until(running_one_of_ours, 30, "a replica running one of the jobs")
        lost = victim[0]["running"]
        (await http.post(f"/_sim/replicas/{victim[0]['index']}/kill")).raise_for_status()
        await room.consistent()
        attempts = {prompt_id_of(lost, 1), prompt_id_of(lost, 2)}
        runs = [p for r in await replicas(http) for p in r["prompts"] if p in attempts]
    job = await room.job(lost)
    assert job.attempts == 2, job.timeline
    assert len(runs) == 2  # the lost run, and the one that completed


async def test_an_endpoint_process_sigkilled_mid_job_gives_its_job_back_and_it_runs_once(
    open_room: Opener,
) -> None:
    room = await open_room()
    east, west = await asyncio.gather(room.gpus.simulator("east"), room.gpus.simulator("west"))
    await room.add_endpoint("east", east)
    await room.add_endpoint("west", west)
    await room.submit_all(steps=STEPS)
    lost = await room.caught_sampling(lambda j: (j.worker or "").startswith("east."))
    await room.gpus.programs[0].kill()

    async def given_back() -> bool:
        job = await room.job(lost.id)
        return any("lost with its replica" in e.reason for e in job.timeline)

    # Nothing answers at east now: the prompt is lost with it, and the job goes back after
    # `endpoint_lost_seconds`, not after the job timeout (then failed).
    await until(given_back, 30, "the lost job given back")
    await room.gpus.simulator("east", port=int(east.rsplit(":", 1)[1]))  # the machine is back
    await room.consistent()
    assert (await room.job(lost.id)).attempts == 2


async def test_a_prefetching_endpoint_sigkilled_gives_back_its_running_and_waiting_jobs(
    open_room: Opener,
) -> None:
    """`prefetch=1`: east's machine dies with one job running and the next waiting in its
    ComfyUI's queue; both go back (lost with it) and each ends once, on west or on east when
    it is back."""
    room = await open_room()
    east, west = await asyncio.gather(room.gpus.simulator("east"), room.gpus.simulator("west"))
    await room.add_endpoint("east", east, prefetch=1)
    await room.submit_all(steps=STEPS)
    running = await room.caught_sampling(lambda j: j.worker == "east.1")

    async def one_waiting_behind() -> list[JobId]:
        jobs = [await room.job(a.job_id) for a in room.accepted]
        return [j.id for j in jobs if j.worker == "east.1" and j.started_at is None]

    await until(one_waiting_behind, 30, "a job waiting behind it in east's queue")
    [waiting] = await one_waiting_behind()
    await room.gpus.programs[0].kill()
    await room.add_endpoint("west", west)

    async def both_given_back() -> bool:
        jobs = [await room.job(running.id), await room.job(waiting)]
        return all(any("lost with its replica" in e.reason for e in j.timeline) for j in jobs)

    await until(both_given_back, 30, "both of east's jobs given back")
    await room.gpus.simulator("east", port=int(east.rsplit(":", 1)[1]))  # the machine is back
    await room.consistent()
