"""Room-wide pushes: the instructor's use cases that reach every participant's page at once
(open a workflow, the published list changed, an output shown to everyone).

An announcement is one event of a `core.events.ROOM_WIDE` type; every process's hub hands it to
every socket, and a participant's socket forwards it only to a page whose extension asked for
workshop pushes. The data is what the pages see: never a user's files or another user's
details unless the instructor chose to show them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from queue_manager.core.events import ROOM_WIDE, EventType
from queue_manager.core.ids import UserId
from queue_manager.service.parts import QueueParts


class RoomWideCases(QueueParts):
    async def announce(
        self,
        kind: EventType,
        data: Mapping[str, object],
        *,
        by: UserId | None = None,
        keep: tuple[str, str] | None = None,
    ) -> str:
        """Push `data` (JSON-able) to every participant's page as a `kind` message; returns
        the event id.

        `keep` (a key name under the prefix, the value; '' deletes it) is written in the same
        step, for what a page opened later must still see (the output shown now)."""
        if kind not in ROOM_WIDE:
            raise ValueError(f"{kind} is not a room-wide event type")
        event_id = await self._announcements.announce(kind, json.dumps(dict(data)), keep)
        self._did("announced", "type=%s by=%s", kind.value, by or "-")
        return event_id
