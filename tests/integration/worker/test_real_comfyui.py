"""The worker agent against a real ComfyUI (skipped unless CW_TEST_REAL_COMFYUI_URL is set;
see shared/tools/real-comfyui.sh for running one on a CPU machine)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from tests.support.graphs import invert_and_preview
from tests.support.jobs import user
from tests.support.servers import serve
from tests.support.settings import make_settings
from worker.agent import Agent
from worker.comfy_client import ComfyClient
from worker.manager_client import ManagerClient
from worker.settings import WorkerSettings

REAL = os.environ.get("CW_TEST_REAL_COMFYUI_URL", "")
pytestmark = pytest.mark.skipif(not REAL, reason="CW_TEST_REAL_COMFYUI_URL not set")


async def test_a_job_runs_on_a_real_comfyui_and_its_outputs_are_copied(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data")
    app = create_app(settings)
    async with serve(app) as url:
        service = app.state.service
        token = await app.state.tokens.create(WorkerId("real"))
        ws = WorkerSettings(
            manager_url=url,  # type: ignore[arg-type]
            token=token,  # type: ignore[arg-type]
            comfyui_url=REAL,  # type: ignore[arg-type]
            heartbeat_seconds=1,
            claim_wait_seconds=2,
            request_timeout_seconds=30,
            work_dir=tmp_path / "work",
        )
        manager, comfy = ManagerClient(ws), ComfyClient(REAL, 30)
        agent = Agent(ws, manager, comfy)
        task = asyncio.create_task(agent.run())
        try:
            prompt = invert_and_preview("cw-real/test")
            submitted = await service.submit(user(1), Lane.NORMAL, prompt)
            for _ in range(600):
                job = await service.user_job(user(1), submitted.id)
                if job.status.is_final:
                    break
                await asyncio.sleep(0.1)
        finally:
            agent.drain()
            await asyncio.wait_for(task, 30)
            await manager.aclose()
            await comfy.aclose()
    assert job.status is JobStatus.COMPLETED, job.error
    kinds = sorted((o["type"], o["subfolder"]) for o in job.outputs)
    assert kinds == [("output", "cw-real"), ("temp", "")]
    saved = next(o for o in job.outputs if o["type"] == "output")
    with Image.open(tmp_path / "data/outputs/user001/cw-real" / str(saved["filename"])) as img:
        assert img.size == (40, 24)
        assert img.convert("RGB").getpixel((0, 0)) == (0, 255, 255)  # inverted red
    async with httpx.AsyncClient(base_url=REAL) as http:
        entry = (await http.get(f"/history/{submitted.id}")).json()[submitted.id]
    assert entry["status"]["status_str"] == "success"
