"""A `runpod` endpoint against a stand-in of RunPod's serverless API running worker-comfyui's
contract (`/run`, `/status/{id}`, `/cancel/{id}`, a Bearer key), on simulator replicas."""

from __future__ import annotations

import pytest
from PIL import Image

from queue_manager.core.endpoint_status import EndpointPhase
from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import INSTRUCTOR, Room
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import user
from tests.support.serverless import load_and_save, png
from tests.support.waiting import until
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runpod.api import RunPodOptions
from worker.simulator.runtime import SimulatorConfig

pytestmark = pytest.mark.timeout(180)
KEY = "rp-test-key-0123456789"


def runpod(room: Room, cold_start: float = 0.0, step_delay: float = 0.0) -> LoadBalancedSimulator:
    return LoadBalancedSimulator(
        room.tmp / "runpod",
        SimulatorConfig(step_delay=step_delay),
        PoolOptions(replicas=2, cold_start=cold_start),
        runpod=RunPodOptions(api_key=KEY),
    )


async def add(room: Room, sim: LoadBalancedSimulator, key: str = KEY, **kw: object) -> None:
    await room.add("rp", sim.url, kind="runpod", headers=(f"Authorization: Bearer {key}",), **kw)


def runpod_statuses(sim: LoadBalancedSimulator) -> list[str]:
    front = sim.front
    return sorted(job.status for job in front.dispatcher.book.jobs.values())  # type: ignore[union-attr]


async def test_a_job_with_an_input_image_runs_on_runpod_through_a_cold_start(room: Room) -> None:
    folder = room.data / "inputs/user001"
    folder.mkdir(parents=True)
    (folder / "pic.png").write_bytes(png(16, 8))
    async with runpod(room, cold_start=1.0) as sim:
        await add(room, sim, cold_start_timeout=60)
        with room.service.subscribe(user(1)) as events:
            submitted = await room.service.submit(user(1), Lane.NORMAL, load_and_save("pic.png"))
            job = await room.finished(submitted.id)
            kinds = []
            while events.pending():
                kinds.append((await events.get()).type)
        assert job.status is JobStatus.COMPLETED, job.error
        assert job.worker == "rp.1"
        assert runpod_statuses(sim) == ["COMPLETED"]
    assert "job.phase" in kinds  # IN_QUEUE while its worker started
    assert "job.started" in kinds
    [output] = job.outputs
    assert output["node_id"] == "2"
    with Image.open(room.data / "outputs/user001" / str(output["filename"])) as img:
        assert img.size == (16, 8)


async def test_a_failing_workflow_fails_the_job_with_runpods_error(room: Room) -> None:
    config_failing = SimulatorConfig(fail_class_types=frozenset({"SaveImage"}))
    async with LoadBalancedSimulator(
        room.tmp / "runpod", config_failing, PoolOptions(replicas=1),
        runpod=RunPodOptions(api_key=KEY),
    ) as sim:  # fmt: skip
        await add(room, sim)
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(submitted.id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.message


async def test_a_wrong_api_key_marks_the_endpoint_failing_and_the_job_goes_back(
    room: Room,
) -> None:
    async with runpod(room) as sim:
        await add(room, sim, key="wrong-key")
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)

        async def given_back() -> bool:
            return (await room.job(submitted.id)).attempts >= 1 and (
                await room.job(submitted.id)
            ).status is not JobStatus.RUNNING

        await until(given_back, 20, "the job given back")
        await room.until_phase("rp", EndpointPhase.FAILING)
        assert "401" in (await room.status("rp")).reason


async def test_a_cancel_mid_run_cancels_the_runpod_job(room: Room) -> None:
    async with runpod(room, step_delay=0.1) as sim:
        await add(room, sim)
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))

        async def in_progress() -> bool:
            return runpod_statuses(sim) == ["IN_PROGRESS"]

        await until(in_progress, 30, "the RunPod job running")
        await room.service.cancel(submitted.id, INSTRUCTOR)

        async def cancelled_there() -> bool:
            return runpod_statuses(sim) == ["CANCELLED"]

        await until(cancelled_there, 20, "the RunPod job cancelled")
        assert (await room.job(submitted.id)).status is JobStatus.CANCELLED


async def test_a_cold_start_past_its_timeout_cancels_there_and_requeues_here(room: Room) -> None:
    async with runpod(room, cold_start=30.0) as sim:
        await add(room, sim, cold_start_timeout=1.5)
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)

        async def back() -> bool:
            job = await room.job(submitted.id)
            return any("IN_QUEUE" in e.reason for e in job.timeline)

        await until(back, 30, "the job back in our queue")
        await until(lambda: "CANCELLED" in runpod_statuses(sim), 20, "cancelled on RunPod")
