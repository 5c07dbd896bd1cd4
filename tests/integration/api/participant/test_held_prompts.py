"""Prompts accepted before any GPU published its catalogue are validated once one does (the
invalid ones fail with ComfyUI's error, which the participant sees), and the last known
catalogue is kept, so validation works from the first second after every GPU left or a
restart."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import JobStatus
from queue_manager.service.queue import QueueService
from tests.support.gpu import Gpu
from tests.support.graphs import SAVE
from tests.support.participants import ACCOUNTS, PASSWORD, client_for
from tests.support.settings import make_settings

INSTRUCTOR = UserId("instructor")


def broken() -> dict[str, Any]:
    """SAVE with an image width ComfyUI refuses (EmptyImage's width is 1..16384)."""
    prompt = copy.deepcopy(SAVE)
    prompt["1"]["inputs"]["width"] = -5
    return prompt


async def queue(client: httpx.AsyncClient, prompt: dict[str, Any]) -> httpx.Response:
    return await client.post("/user001/api/prompt", json={"prompt": prompt})


async def test_a_held_prompt_that_fails_validation_fails_when_a_catalogue_arrives(
    app: FastAPI, alice: httpx.AsyncClient, gpu: Gpu
) -> None:
    service: QueueService = app.state.service
    bad, good = await queue(alice, broken()), await queue(alice, SAVE)
    assert bad.status_code == good.status_code == 200  # nothing to check them against yet
    bad_id, good_id = JobId(bad.json()["prompt_id"]), JobId(good.json()["prompt_id"])
    assert (await service.job(bad_id)).unvalidated

    await gpu.register()  # the first GPU publishes its catalogue

    failed = await service.job(bad_id)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.type == "prompt_outputs_failed_validation"
    assert failed.error.node_id == "1" and failed.error.node_type == "EmptyImage"
    assert "width" in failed.error.message
    kept = await service.job(good_id)
    assert kept.status is JobStatus.QUEUED and not kept.unvalidated
    # The participant's own history says why, in ComfyUI's words.
    entry = (await alice.get(f"/user001/api/history/{bad_id}")).json()[bad_id]
    assert entry["status"]["status_str"] == "error"
    assert (await gpu.claim())["id"] == good_id  # the valid one runs, the invalid one never


async def test_with_every_gpu_gone_the_last_known_catalogue_still_validates(
    app: FastAPI, alice: httpx.AsyncClient, gpu: Gpu
) -> None:
    service: QueueService = app.state.service
    await gpu.register()
    await service.remove_worker(WorkerId("gpu1"), INSTRUCTOR)
    refused = await queue(alice, broken())
    assert refused.status_code == 400
    assert refused.json()["node_errors"]["1"]["class_type"] == "EmptyImage"


async def test_after_a_restart_prompts_are_validated_from_the_first_second(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data")
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        for name, role in ACCOUNTS.items():
            await first.state.accounts.add(name, role, PASSWORD)
        token = await first.state.tokens.create(WorkerId("gpu1"))
        gpu = Gpu(first, {"Authorization": f"Bearer {token}"})
        await gpu.register()
        await first.state.service.remove_worker(WorkerId("gpu1"), INSTRUCTOR)
        await gpu.client.aclose()
    second = create_app(settings)  # a restarted queue manager; no GPU has come back
    async with second.router.lifespan_context(second), client_for(second, "user001") as alice:
        refused = await queue(alice, broken())
        assert refused.status_code == 400
        assert "width" in str(refused.json()["node_errors"])
