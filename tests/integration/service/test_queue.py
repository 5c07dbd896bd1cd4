"""The queue service's own rules on top of the stores: why a job is held, and what a
submission must look like before anything is stored."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.errors import PromptRejected
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from tests.support.clock import FakeClock
from tests.support.jobs import add_worker, prompt, user
from tests.support.settings import make_settings


async def submit(svc: QueueService, u: UserId, p: dict[str, object]) -> JobId:
    return (await svc.submit(u, Lane.NORMAL, p)).id


async def test_models_are_routed_when_a_worker_reports_them(service: QueueService) -> None:
    caps = Capabilities(frozenset({"KSampler", "SaveImage"}), frozenset({"sd15.safetensors"}))
    w = await add_worker(service, "gpu", caps)
    sdxl = await submit(service, user(1), prompt("SaveImage", model="sdxl.safetensors"))
    sd15 = await submit(service, user(1), prompt("SaveImage", model="sd15.safetensors"))
    job = await service.claim(w, wait=0)
    assert job is not None and job.id == sd15  # FIFO within a user yields to capability
    assert (await service.user_job(user(1), sdxl)).hold == (
        "held: no connected GPU has models sdxl.safetensors"
    )


async def test_job_no_worker_can_run_is_held_with_a_reason_until_one_can(
    service: QueueService,
) -> None:
    a = await submit(service, user(1), prompt("KSampler"))
    assert (await service.user_job(user(1), a)).hold == "waiting for a GPU worker to connect"
    await add_worker(service, "small", Capabilities(frozenset({"SaveImage"})))
    assert (await service.user_job(user(1), a)).hold == (
        "held: no connected GPU has node types KSampler"
    )
    await add_worker(service, "big", Capabilities(frozenset({"KSampler"})))
    assert (await service.user_job(user(1), a)).hold is None


async def test_oversized_and_malformed_prompts_are_refused_and_nothing_is_queued(
    redis_server: RedisServer, redis: Redis, prefix: str, clock: FakeClock
) -> None:
    svc = QueueService(make_settings(redis_server, prefix, max_prompt_bytes=2048), redis, clock)
    await svc.initialize()
    big = {"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "x" * 4096}}}
    with pytest.raises(PromptRejected, match="bytes; at most 2048"):
        await svc.submit(user(1), Lane.NORMAL, big)
    with pytest.raises(PromptRejected, match="missing the class_type"):
        await svc.submit(user(1), Lane.NORMAL, {"1": {"inputs": {}}})
    assert await svc.user_jobs(user(1)) == []
    assert await svc.positions() == {}
