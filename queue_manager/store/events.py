"""The event stream: one capped Redis stream of every job, worker and control event.

Scripts append to it in the same step as the change they announce, so a reader that notes the
stream's last id before acting (submitting, say) and then reads from that id misses nothing.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis

from queue_manager.core.events import Event, EventType
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.store.keys import Keys


def event_from_entry(entry_id: str, f: dict[str, str]) -> Event:
    return Event(
        id=entry_id,
        type=EventType(f["t"]),
        at=float(f["at"]),
        job=JobId(f["j"]) if f.get("j") else None,
        user=UserId(f["u"]) if f.get("u") else None,
        worker=WorkerId(f["w"]) if f.get("w") else None,
        data=json.loads(f.get("d") or "{}") or {},
    )


class EventLog:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.events

    async def last_id(self) -> str:
        """The id of the newest event ('0-0' when there is none): read after it to miss nothing."""
        newest = await self._redis.xrevrange(self._key, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def read(
        self, after: str, *, block_ms: int | None = None, count: int = 500
    ) -> list[Event]:
        """Events after `after`, oldest first; waits up to `block_ms` when there are none."""
        reply = await self._redis.xread({self._key: after}, count=count, block=block_ms)
        if not reply:
            return []
        # decode_responses=True: a list of [stream, [(id, fields), ...]]
        entries = cast("list[tuple[str, dict[str, str]]]", cast("list[Any]", reply)[0][1])
        return [event_from_entry(eid, fields) for eid, fields in entries]
