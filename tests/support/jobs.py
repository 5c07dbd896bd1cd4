"""Users, prompts and workers as the queue tests name them."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from queue_manager.core.ids import JobId, UserId, WorkerId, new_job_id
from queue_manager.core.jobs import Lane
from queue_manager.core.prompts import parse_prompt
from queue_manager.core.queueing import NewJob
from queue_manager.core.requirements import Capabilities, requirements_of
from queue_manager.service.queue import QueueService

EVERYTHING = Capabilities(frozenset({"EmptyImage", "SaveImage", "ImageInvert", "KSampler"}))


def user(n: int) -> UserId:
    return UserId(f"user{n:03d}")


def prompt(*class_types: str, model: str | None = None) -> dict[str, object]:
    nodes: dict[str, object] = {
        str(i): {"class_type": ct, "inputs": {}}
        for i, ct in enumerate(class_types or ("SaveImage",))
    }
    if model:
        nodes["m"] = {"class_type": "KSampler", "inputs": {"ckpt_name": model}}
    return nodes


def new_job(
    owner: UserId,
    lane: Lane = Lane.NORMAL,
    raw_prompt: dict[str, object] | None = None,
    job_id: JobId | None = None,
) -> NewJob:
    """A job as `QueueService.submit` hands it to the job store (parsed, its needs known)."""
    raw = raw_prompt or prompt()
    return NewJob(
        id=job_id or new_job_id(),
        user=owner,
        lane=lane,
        prompt_json=json.dumps(raw, separators=(",", ":")),
        requirements=requirements_of(parse_prompt(raw, max_nodes=2000)),
    )


async def add_worker(
    svc: QueueService, name: str = "gpu1", caps: Capabilities = EVERYTHING
) -> WorkerId:
    wid = WorkerId(name)
    await svc.register_worker(wid, caps, {"gpu": "test"})
    return wid


def idle_key(prefix: str) -> str:
    """The set of workers waiting in a blocking claim: `{p}idle` (store/keys.py; only the Lua
    scripts build its name, so `Keys` has none)."""
    return f"{prefix}idle"


async def in_claim(redis: Redis, prefix: str, *workers: str) -> bool:
    """Whether each worker's claim has looked, found nothing and now waits: a submission it can
    run is handed to it from then on, and takes it out of the set in the same step."""
    return all(await redis.smismember(idle_key(prefix), list(workers)))
