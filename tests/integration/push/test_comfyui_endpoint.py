"""A `comfyui` endpoint: one ComfyUI (the simulator) the queue manager calls itself."""

from __future__ import annotations

from PIL import Image

from queue_manager.core.endpoint_status import EndpointPhase
from queue_manager.core.events import EventType
from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import Room
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import user
from tests.support.simulator import serve_simulator
from worker.simulator.runtime import SimulatorConfig


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
