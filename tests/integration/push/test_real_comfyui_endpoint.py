"""A real ComfyUI as a `comfyui` endpoint (skipped unless CW_TEST_REAL_COMFYUI_URL is set;
see shared/tools/real-comfyui.sh for running one on a CPU machine)."""

from __future__ import annotations

import os

import httpx
import pytest
from PIL import Image

from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import INSTRUCTOR, Room
from tests.support.graphs import invert_and_preview
from tests.support.jobs import user
from tests.support.waiting import until

REAL = os.environ.get("CW_TEST_REAL_COMFYUI_URL", "")
# That ComfyUI's output folder, where this machine can read it (its `--output-directory`).
MOUNT = os.environ.get("CW_TEST_REAL_COMFYUI_OUTPUT_DIR", "")
pytestmark = [
    pytest.mark.skipif(not REAL, reason="CW_TEST_REAL_COMFYUI_URL not set"),
    pytest.mark.timeout(180),
]

PROMPT = invert_and_preview("cw-push/test")


async def test_a_run_on_a_real_comfyui_endpoint_lands_its_png_in_the_users_folder(
    room: Room,
) -> None:
    await room.add("real", REAL)
    submitted = await room.service.submit(user(1), Lane.NORMAL, PROMPT)
    job = await room.finished(submitted.id, timeout=120)
    assert job.status is JobStatus.COMPLETED, job.error
    kinds = sorted((o["type"], o["subfolder"]) for o in job.outputs)
    assert kinds == [("output", "cw-push"), ("temp", "")]  # our job folder taken off again
    saved = next(o for o in job.outputs if o["type"] == "output")
    with Image.open(room.data / "outputs/user001/cw-push" / str(saved["filename"])) as img:
        assert img.size == (40, 24)
        assert img.convert("RGB").getpixel((0, 0)) == (0, 255, 255)  # inverted red


@pytest.mark.skipif(not MOUNT, reason="CW_TEST_REAL_COMFYUI_OUTPUT_DIR not set")
async def test_outputs_read_from_a_real_comfyuis_output_folder(room: Room) -> None:
    """`--outputs DIR`: the real ComfyUI's output folder read as the shared mount."""
    await room.add("real", REAL, outputs=MOUNT)
    submitted = await room.service.submit(user(1), Lane.NORMAL, PROMPT)
    job = await room.finished(submitted.id, timeout=120)
    assert job.status is JobStatus.COMPLETED, job.error
    saved = next(o for o in job.outputs if o["type"] == "output")
    assert (room.data / "outputs/user001/cw-push" / str(saved["filename"])).is_file()


def slow(prefix: str) -> dict[str, object]:
    """A prompt that keeps a CPU ComfyUI busy for a second or more (a wide blur)."""
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 1024, "height": 1024, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ImageBlur",
              "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 5.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }  # fmt: skip


async def test_prefetch_on_a_real_comfyui_takes_a_waiting_job_back_for_the_instructor(
    room: Room,
) -> None:
    """`prefetch=1`: the next job waits in the real ComfyUI's queue; an instructor's job takes
    its place (deleted from that queue, back in ours uncounted), and everything runs."""
    await room.add_registered("real", REAL, prefetch=1)
    first = await room.service.submit(user(1), Lane.NORMAL, slow("cw-push/slow"))
    second = await room.service.submit(user(2), Lane.NORMAL, PROMPT)

    async def pending_there() -> bool:
        async with httpx.AsyncClient(timeout=5) as http:
            queue = (await http.get(f"{REAL}/api/queue")).json()
        return [item[1] for item in queue["queue_pending"]] == [second.id]

    await until(pending_there, 60, "the second job waiting in the real ComfyUI's queue")
    demo = await room.service.submit(INSTRUCTOR, Lane.INSTRUCTOR, PROMPT)
    done = {j.id: await room.finished(j.id, timeout=120) for j in (first, demo, second)}
    assert all(j.status is JobStatus.COMPLETED for j in done.values()), done
    started = sorted(done.values(), key=lambda j: j.started_at or 0)
    assert [j.id for j in started] == [first.id, demo.id, second.id]
    assert done[second.id].attempts == 1
    assert any("before it started" in t.reason for t in done[second.id].timeline)
