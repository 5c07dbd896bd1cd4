"""The workers' ComfyUI `object_info`, as each uploaded it (one JSON string per worker), and the
catalogues kept for when no worker is known (after every GPU left, or a restart)."""

from __future__ import annotations

from typing import cast

from queue_manager.core.ids import WorkerId
from queue_manager.core.workers import WorkerState
from queue_manager.store.scripts import ScriptRunner


class CatalogStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._keys = runner.keys

    async def key(self) -> tuple[int, dict[WorkerId, WorkerState]]:
        """What the merged catalogue depends on, in one round trip: the catalogue version and
        each known worker's state (catalog_key.lua)."""
        version, *pairs = cast("list[str]", await self._run("catalog_key"))
        states = {WorkerId(w): WorkerState(s) for w, s in zip(pairs[::2], pairs[1::2], strict=True)}
        return int(version), states

    async def put(self, worker_id: WorkerId, object_info_json: str) -> None:
        """A worker's catalogue, also kept (under its name) after the worker is gone."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.worker_object_info(worker_id), object_info_json)
            pipe.hset(self._keys.catalog_kept, worker_id, object_info_json)
            pipe.incr(self._keys.catalog_version)
            await pipe.execute()

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
