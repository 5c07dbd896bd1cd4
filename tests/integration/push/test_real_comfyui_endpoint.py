"""A real ComfyUI as a `comfyui` endpoint (skipped unless CW_TEST_REAL_COMFYUI_URL is set;
see shared/tools/real-comfyui.sh for running one on a CPU machine)."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from queue_manager.core.jobs import JobStatus, Lane
from tests.integration.push.conftest import Room
from tests.support.graphs import invert_and_preview
from tests.support.jobs import user

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
