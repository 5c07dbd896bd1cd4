"""Room-wide pushes (`lua/announce.lua`): an event for every participant's page, and what a
page opened later must still see, kept in the same step."""

from __future__ import annotations

from typing import cast

from queue_manager.core.events import EventType
from queue_manager.store.scripts import ScriptRunner


class AnnouncementStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._keys = runner.keys

    async def announce(
        self, kind: EventType, data_json: str, keep: tuple[str, str] | None = None
    ) -> str:
        """Append the event (`data_json`: a JSON object, sent as it is) and, with `keep`
        (a key name under the prefix, its new value; '' deletes it), set that key in the same
        step. Returns the event's id."""
        res = await self._run("announce", kind.value, data_json, *(keep or ()))
        if res[0] != "ok":
            raise ValueError(f"{kind} is not a room-wide event type")
        return str(res[1])

    async def kept(self, name: str) -> str | None:
        """The value last kept under `name` by an announcement (None when none is)."""
        return cast("str | None", await self._redis.get(self._keys.prefix + name))
