"""A `comfyui` endpoint that is serverless replicas behind a round-robin load balancer (the
simulator's `LoadBalancedSimulator`): each request may reach another replica, cold starts take
seconds, outputs land on a shared mount. Nothing is lost, nothing runs twice."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest

from queue_manager.core.endpoint_status import EndpointPhase
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.push.comfyui import prompt_id_of
from tests.integration.push.conftest import INSTRUCTOR, Room
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import user
from tests.support.serverless import load_and_save, png
from tests.support.waiting import until
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runtime import SimulatorConfig

pytestmark = pytest.mark.timeout(240)

READY = (EndpointPhase.READY, EndpointPhase.BUSY)


class Mounts:
    def __init__(self, base: Path) -> None:
        self.inputs = base / "mount/input"
        self.outputs = base / "mount/output"
        self.inputs.mkdir(parents=True)
        self.outputs.mkdir(parents=True)


def balanced(
    room: Room, replicas: int = 3, cold_start: float = 0.0, step_delay: float = 0.0
) -> tuple[LoadBalancedSimulator, Mounts]:
    mounts = Mounts(room.tmp)
    pool = PoolOptions(
        replicas=replicas,
        cold_start=cold_start,
        shared_inputs=mounts.inputs,
        shared_outputs=mounts.outputs,
    )
    sim = LoadBalancedSimulator(room.tmp / "lb", SimulatorConfig(step_delay=step_delay), pool)
    return sim, mounts


async def add_balanced(room: Room, sim: LoadBalancedSimulator, mounts: Mounts, **kw: Any) -> None:
    await room.add("cloud", sim.url, inputs=str(mounts.inputs), outputs=str(mounts.outputs), **kw)


def runs_of(sim: LoadBalancedSimulator, job_id: JobId) -> int:
    """How many times replicas accepted the job's prompt, any attempt, over all their lives."""
    ids = {prompt_id_of(job_id, attempt) for attempt in range(1, 6)}
    return sum(p in ids for r in sim.report()["replicas"] for p in r["prompts"])


def user_files(room: Room, n: int) -> list[str]:
    folder = room.data / f"outputs/user{n:03d}"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def inputs(room: Room) -> None:
    """Each of 20 participants uploaded `pic.png` (their own colour)."""
    for n in range(1, 21):
        folder = room.data / f"inputs/user{n:03d}"
        folder.mkdir(parents=True)
        (folder / "pic.png").write_bytes(png(16, 8, (n * 10, 0, 0, 255)))


@pytest.mark.slow
async def test_twenty_participants_three_jobs_each_through_cold_replicas(
    room: Room, inputs: None
) -> None:
    """3 replicas, a 5 s cold start, shared mounts: every job completes once, every output
    lands in its own participant's folder exactly once, the cold start is a phase the
    participants read, and the fair order is kept."""
    sim, mounts = balanced(room, cold_start=5.0)
    async with sim:
        await add_balanced(room, sim, mounts, slots=3, cold_start_timeout=60)
        seen: collections.Counter[EventType] = collections.Counter()
        with room.service.subscribe(None) as events:

            async def count() -> None:  # read as they come: a subscriber behind is cut off
                while True:
                    seen[(await events.get()).type] += 1

            counting = asyncio.create_task(count())
            ids = []
            for round_ in range(3):
                for n in range(1, 21):
                    prompt = load_and_save("pic.png", f"u/r{round_}")
                    ids.append((n, (await room.service.submit(user(n), Lane.NORMAL, prompt)).id))
            jobs = [await room.finished(job_id, timeout=180) for _, job_id in ids]
            counting.cancel()
            await asyncio.wait({counting})
        assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 60, [
            j.error for j in jobs if j.error
        ]
        assert all(runs_of(sim, job.id) == 1 for job in jobs)
        assert sim.report()["cold_starts"] >= 3
    for n in range(1, 21):
        assert user_files(room, n) == [f"u/r{r}_00001_.png" for r in range(3)]
    assert seen[EventType.JOB_PHASE] >= 1  # "GPU starting" reached participants
    assert seen[EventType.JOB_PROGRESS] + seen[EventType.JOB_EXECUTING] >= 1  # socket relays
    # Fair: each user's first job was claimed before anyone's second.
    claimed = sorted(jobs, key=lambda j: j.claimed_at or 0)
    first_round = {j.user for j in claimed[:20]}
    assert len(first_round) == 20


async def test_a_lost_prompt_answer_is_looked_up_and_the_prompt_not_sent_twice(
    room: Room,
) -> None:
    sim, mounts = balanced(room)
    async with sim:
        await add_balanced(room, sim, mounts)
        await room.until_phase("cloud", *READY)
        sim.faults.drop_prompt_responses = 1
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.COMPLETED, job.error
        assert runs_of(sim, submitted.id) == 1
        assert sim.faults.drop_prompt_responses == 0  # the fault really happened
    assert user_files(room, 1) == ["t/e2e_00001_.png"]


async def test_replicas_that_never_answer_history_still_deliver_through_the_socket_or_mount(
    room: Room,
) -> None:
    sim, mounts = balanced(room, replicas=2)
    async with sim:
        for k in range(2):
            sim.faults.of(k).history = "empty"
        await add_balanced(room, sim, mounts)
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.COMPLETED, job.error
        assert runs_of(sim, submitted.id) == 1
    assert user_files(room, 1) == ["t/e2e_00001_.png"]


async def test_a_replica_killed_mid_job_loses_it_and_another_replica_finishes_it_once(
    room: Room,
) -> None:
    sim, mounts = balanced(room, replicas=2, step_delay=0.1)
    async with sim:
        await add_balanced(room, sim, mounts)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=60))

        def running_on() -> list[int]:
            return [
                int(r["index"]) for r in sim.report()["replicas"] if r["running"] == submitted.id
            ]

        await until(lambda: bool(running_on()), 20, "the prompt running on a replica")
        await sim.kill(running_on()[0])
        job = await room.finished(submitted.id, timeout=60)
        assert job.status is JobStatus.COMPLETED, job.error
        assert job.attempts == 2
        assert "no replica" in [e.reason for e in job.timeline if e.to is JobStatus.QUEUED][-1]
    assert len([f for f in user_files(room, 1) if f.endswith(".png")]) == 1


async def test_a_cancel_mid_run_through_the_balancer_stops_the_prompt(room: Room) -> None:
    sim, mounts = balanced(room, replicas=2, step_delay=0.1)
    async with sim:
        await add_balanced(room, sim, mounts)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))

        async def started() -> bool:
            return (await room.job(submitted.id)).started_at is not None

        await until(started, 20, "the run started")
        await room.service.cancel(submitted.id, INSTRUCTOR)

        async def idle() -> bool:
            return all(not r["running"] for r in sim.report()["replicas"])

        await until(idle, 20, "no replica running the prompt")
        assert (await room.job(submitted.id)).status is JobStatus.CANCELLED
    assert user_files(room, 1) == []
