"""A `comfyui` endpoint: one ComfyUI (the simulator) the queue manager calls itself."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

from queue_manager.cli.redis_server import free_port
from queue_manager.core.endpoint_status import EndpointPhase
from queue_manager.core.events import EventType
from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import INSTRUCTOR, Room
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import user
from tests.support.simulator import RunningSimulator, serve_simulator
from tests.support.waiting import until
from worker.simulator.runtime import SimulatorConfig


def idle(sim: RunningSimulator) -> bool:
    """Nothing running or waiting on the simulator."""
    queue = sim.sim.state.queue_json()
    return not queue["queue_running"] and not queue["queue_pending"]


async def test_a_job_runs_on_an_endpoint_and_its_png_lands_in_the_users_folder(
    room: Room,
) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig()) as sim:
        await room.add("box", sim.url)
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.COMPLETED, job.error
        assert job.worker == "box.1"
        assert [(o["filename"], o["subfolder"], o["type"]) for o in job.outputs] == [
            ("e2e_00001_.png", "t", "output")
        ]
        with Image.open(room.data / "outputs/user001/t/e2e_00001_.png") as img:
            assert img.size == (32, 24)
        await room.until_phase("box", EndpointPhase.READY)


async def test_progress_on_an_endpoint_reaches_the_participant(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        await room.add("box", sim.url)
        with room.service.subscribe(user(1)) as events:
            submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=12))
            job = await room.finished(submitted.id)
            kinds = []
            while events.pending():
                kinds.append((await events.get()).type)
    assert job.status is JobStatus.COMPLETED, job.error
    assert EventType.JOB_STARTED in kinds
    assert EventType.JOB_PROGRESS in kinds
    assert EventType.JOB_PREVIEW in kinds
    assert kinds.index(EventType.JOB_EXECUTED) < kinds.index(EventType.JOB_COMPLETED)


async def test_a_cold_endpoint_is_a_phase_the_participant_reads_then_the_job_runs(
    room: Room,
) -> None:
    """Scaled to zero after it first answered: the job waits through the cold start, the
    participant reads "GPU starting", the endpoint shows starting, and the start is measured."""
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(), port) as sim:
        await room.add("cloud", sim.url, cold_start_timeout=60)
        await room.until_phase("cloud", EndpointPhase.READY)
    submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)

    async def waiting_on_start() -> bool:
        return (await room.job(submitted.id)).phase is not None

    await until(waiting_on_start, 20, "the cold-start phase")
    assert "GPU starting" in str((await room.job(submitted.id)).phase)
    assert (await room.status("cloud")).phase is EndpointPhase.STARTING
    status = await room.service.workshop_status(user(1), 0)
    assert "GPU starting" in str(status)
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(), port):
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.COMPLETED, job.error
        assert job.attempts == 1
        await room.until_phase("cloud", EndpointPhase.READY)
    assert (await room.status("cloud")).last_cold_start is not None


async def test_a_cold_start_longer_than_its_timeout_requeues_the_job_and_marks_the_endpoint(
    room: Room,
) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(), port) as sim:
        await room.add("cloud", sim.url, cold_start_timeout=1.5)
        await room.until_phase("cloud", EndpointPhase.READY)
    submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)

    async def requeued() -> bool:
        job = await room.job(submitted.id)
        return job.attempts >= 1 and job.status is not JobStatus.RUNNING

    await until(requeued, 20, "the job back in the queue")
    job = await room.job(submitted.id)
    assert job.status in (JobStatus.QUEUED, JobStatus.FAILED)
    assert any("cold start" in e.reason for e in job.timeline)
    # Failing with the reason, until its next try finds it starting again.
    shown = (await room.service.room_state(0))["endpoints"]
    assert [e["name"] for e in shown] == ["cloud"]
    assert shown[0]["state"] in ("failing", "starting")
    assert "headers" not in shown[0]


async def test_a_dead_endpoint_takes_no_more_jobs_until_it_answers_again(
    room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    """Its machine gone: the job it held goes back once, and its slot claims nothing more
    (each job would wait out the cold start timeout there and lose an attempt) but asks the
    endpoint, backing off, until it answers; then the waiting jobs run there."""
    caplog.set_level(logging.INFO, logger="queue_manager.push.slot")
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(), port) as sim:
        await room.add("cloud", sim.url, cold_start_timeout=1.0)
        await room.until_phase("cloud", EndpointPhase.READY)
        url = sim.url
    jobs = [await room.service.submit(user(n), Lane.NORMAL, SAVE) for n in (1, 2, 3)]
    await room.until_phase("cloud", EndpointPhase.FAILING)

    def asked_twice() -> bool:
        return sum("endpoint still failing" in r.getMessage() for r in caplog.records) >= 2

    await until(asked_twice, 30, "the slot asking the failing endpoint twice")
    held = [await room.job(j.id) for j in jobs]
    assert [j.status for j in held] == [JobStatus.QUEUED] * 3
    assert sorted(j.attempts for j in held) == [0, 0, 1]  # one went there, and came back
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(), port) as back:
        assert back.url == url
        done = [await room.finished(j.id) for j in jobs]
    assert [j.status for j in done] == [JobStatus.COMPLETED] * 3
    assert sorted(j.attempts for j in done) == [1, 1, 2]


async def test_a_job_past_its_timeout_fails_saying_so_and_leaves_the_endpoint(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.2)) as sim:
        await room.add("box", sim.url, job_timeout=1)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=200))
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and job.error.type == "job_timeout"
        assert "job timeout" in job.error.message

        await until(lambda: idle(sim), 10, "the prompt interrupted on the endpoint")


async def test_a_cancel_mid_run_takes_the_prompt_off_the_endpoint(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.1)) as sim:
        await room.add("box", sim.url)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))

        async def started() -> bool:
            return (await room.job(submitted.id)).started_at is not None

        await until(started, 20, "the run started")
        await room.service.cancel(submitted.id, INSTRUCTOR)

        await until(lambda: idle(sim), 10, "the prompt interrupted on the endpoint")
        assert (await room.job(submitted.id)).status is JobStatus.CANCELLED
        assert not list((room.data / "outputs").glob("user001/**/*.png"))


async def test_an_endpoint_removed_mid_job_gives_the_job_back_to_the_queue(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.1)) as sim:
        await room.add("box", sim.url)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))

        async def started() -> bool:
            return (await room.job(submitted.id)).started_at is not None

        await until(started, 20, "the run started")
        await room.service.remove_endpoint("box", INSTRUCTOR)
        job = await room.job(submitted.id)
        assert job.status is JobStatus.QUEUED
        assert "removed" in job.timeline[-1].reason

        await until(lambda: idle(sim), 10, "the prompt interrupted on the endpoint")
        assert "box.1" not in [w.id for w in await room.service.gpu_workers()]


async def test_outputs_come_from_the_shared_mount_with_the_participants_own_names(
    room: Room,
) -> None:
    shared = room.tmp / "mount"
    async with serve_simulator(shared, SimulatorConfig()) as sim:
        await room.add("cloud", sim.url, outputs=str(sim.sim.folders.of("output")))
        first = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        second = await room.service.submit(user(2), Lane.NORMAL, SAVE)
        for submitted in (first, second):
            job = await room.finished(submitted.id)
            assert job.status is JobStatus.COMPLETED, job.error
    for n in (1, 2):
        files = sorted(p.relative_to(room.data / f"outputs/user00{n}").as_posix()
                       for p in (room.data / f"outputs/user00{n}").rglob("*.png"))  # fmt: skip
        assert files == ["t/e2e_00001_.png"]


async def test_more_slots_take_effect_live_and_the_running_job_runs_on(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        await room.add("box", sim.url, slots=1)
        first = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=60))

        async def started() -> bool:
            return (await room.job(first.id)).started_at is not None

        await until(started, 20, "the first job running")
        await room.add("box", sim.url, slots=2)
        second = await room.service.submit(user(2), Lane.NORMAL, SAVE)

        async def on_the_new_slot() -> bool:
            return (await room.job(second.id)).worker == "box.2"

        await until(on_the_new_slot, 20, "the second job on the new slot")
        done = await room.finished(first.id)
        assert done.status is JobStatus.COMPLETED, done.error
        assert done.attempts == 1  # not restarted by the change
