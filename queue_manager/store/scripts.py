"""Loads the Lua operations (each behind `lua/lib.lua`) and runs them with prefix and time."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from queue_manager.core.clock import Clock
from queue_manager.store.keys import Keys

Arg = str | int | float

_LIB = "lib.lua"


def _load_sources() -> dict[str, str]:
    folder = resources.files("queue_manager.store") / "lua"
    lib = (folder / _LIB).read_text()
    return {
        entry.name.removesuffix(".lua"): lib + "\n" + entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".lua") and entry.name != _LIB
    }


_SOURCES = _load_sources()


class ScriptRunner:
    """Runs one named script: ARGV starts with the key prefix and `now` from the clock.

    redis-py's script objects use EVALSHA and reload on NOSCRIPT, so a restarted Redis (which
    forgets loaded scripts) costs one extra round trip, not an error.
    """

    def __init__(self, redis: Redis, keys: Keys, clock: Clock = time.time) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(src) for name, src in _SOURCES.items()
        }

    async def run(self, name: str, *args: Arg) -> Any:
        return await self.run_at(name, self.clock(), *args)

    async def run_at(self, name: str, now: float, *args: Arg) -> Any:
        return await self._scripts[name](keys=[], args=[self.keys.prefix, repr(now), *args])
