"""The workers' ComfyUI `object_info`, as each uploaded it (one JSON string per worker), and the
catalogues kept for when no worker is known (after every GPU left, or a restart)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from queue_manager.core.ids import WorkerId
from queue_manager.store.keys import Keys


class CatalogStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def put(self, worker_id: WorkerId, object_info_json: str) -> None:
        """A worker's catalogue, also kept (under its name) after the worker is gone."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.worker_object_info(worker_id), object_info_json)
            pipe.hset(self._keys.catalog_kept, worker_id, object_info_json)
            pipe.incr(self._keys.catalog_version)
            await pipe.execute()

    async def version(self) -> int:
        return int(await self._redis.get(self._keys.catalog_version) or 0)

    async def get_many(self, worker_ids: list[WorkerId]) -> dict[WorkerId, str]:
        if not worker_ids:
            return {}
        raw = await self._redis.mget([self._keys.worker_object_info(w) for w in worker_ids])
        return {w: str(r) for w, r in zip(worker_ids, raw, strict=True) if r}

    async def kept_of(self, worker_id: WorkerId) -> str | None:
        """The catalogue `worker_id` last published here (kept across its absences)."""
        raw = await self._redis.hget(self._keys.catalog_kept, worker_id)
        return None if raw is None else str(raw)

    async def kept(self) -> dict[WorkerId, str]:
        """Every catalogue a worker ever published here, the latest per worker name."""
        return cast("dict[WorkerId, str]", await self._redis.hgetall(self._keys.catalog_kept))
