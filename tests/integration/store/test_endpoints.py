"""Push endpoints' configurations as Redis keeps them: every option survives, and one written
before an option existed reads with that option's default."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from queue_manager.core.endpoints import endpoint
from queue_manager.store.endpoints import EndpointStore
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner


async def test_every_option_is_kept(runner: ScriptRunner) -> None:
    store = EndpointStore(runner)
    config = endpoint(
        "box", "http://gpu.example:8188", slots=2, headers=("X-Key: k",), outputs="/mnt/out",
        cold_start_timeout=60, job_timeout=600, prefetch=1,
    )  # fmt: skip
    assert await store.put(config)
    assert await store.all() == [config]


async def test_an_endpoint_configured_before_prefetch_existed_has_none(
    runner: ScriptRunner, redis: Redis, keys: Keys
) -> None:
    old = {
        "name": "box", "url": "http://gpu.example:8188", "kind": "comfyui", "slots": 1,
        "headers": [], "outputs": "view", "inputs": "upload", "cold_start_timeout": 300.0,
        "job_timeout": 1800.0,
    }  # fmt: skip
    await redis.hset(keys.endpoints, "box", json.dumps(old))
    [config] = await EndpointStore(runner).all()
    assert (config.name, config.prefetch) == ("box", 0)
