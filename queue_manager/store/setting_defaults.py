"""The workshop's default settings for participants in Redis: one hash, setting id -> JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from queue_manager.store.scripts import ScriptRunner


class SettingDefaultStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._runner = runner
        self._redis = runner.redis
        self._key = runner.keys.setting_defaults

    async def seed(self, built_in: Mapping[str, str]) -> bool:
        """Write `built_in` (id -> JSON) unless this workshop was seeded before."""
        pairs = [part for item in built_in.items() for part in item]
        return bool(await self._runner.run("setting_defaults_seed", *pairs))

    async def all(self) -> dict[str, str]:
        return cast("dict[str, str]", await self._redis.hgetall(self._key))

    async def put(self, setting_id: str, value: str) -> None:
        await self._redis.hset(self._key, setting_id, value)

    async def remove(self, setting_id: str) -> bool:
        return bool(await self._redis.hdel(self._key, setting_id))

    async def replace(self, defaults: Mapping[str, str]) -> None:
        """All of them at once (MULTI/EXEC: a reader sees the old set or the new one)."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.delete(self._key)
            if defaults:
                tx.hset(self._key, items=[part for item in defaults.items() for part in item])
            await tx.execute()
