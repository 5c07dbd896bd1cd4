"""Push endpoints' configurations in Redis: one hash, name -> JSON. Header values (API keys)
are stored as given, since the queue manager must send them; Redis is never published, and
nothing reads them back out but the dispatcher (`EndpointConfig.shown` hides them)."""

from __future__ import annotations

import json
from typing import cast

from redis.asyncio import Redis

from queue_manager.core.endpoints import EndpointConfig, EndpointKind
from queue_manager.store.keys import Keys


class EndpointStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.endpoints

    async def put(self, config: EndpointConfig) -> bool:
        """Add or replace; True if it is new."""
        return bool(await self._redis.hset(self._key, config.name, _encode(config)))

    async def remove(self, name: str) -> bool:
        return bool(await self._redis.hdel(self._key, name))

    async def all(self) -> list[EndpointConfig]:
        raw = cast("dict[str, str]", await self._redis.hgetall(self._key))
        return [_decode(text) for _, text in sorted(raw.items())]


def _encode(c: EndpointConfig) -> str:
    return json.dumps(
        {
            "name": c.name,
            "url": c.url,
            "kind": c.kind.value,
            "slots": c.slots,
            "headers": [list(h) for h in c.headers],
            "outputs": c.outputs,
            "inputs": c.inputs,
            "cold_start_timeout": c.cold_start_timeout,
            "job_timeout": c.job_timeout,
        }
    )


def _decode(text: str) -> EndpointConfig:
    d = json.loads(text)
    return EndpointConfig(
        name=d["name"],
        url=d["url"],
        kind=EndpointKind(d["kind"]),
        slots=int(d["slots"]),
        headers=tuple((str(n), str(v)) for n, v in d["headers"]),
        outputs=d["outputs"],
        inputs=d["inputs"],
        cold_start_timeout=float(d["cold_start_timeout"]),
        job_timeout=float(d["job_timeout"]),
    )
