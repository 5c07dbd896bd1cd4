"""The dashboards' shared view of the room, per process.

However many instructor sockets are open, the room state is rebuilt at most once per
`interval` after something changed, encoded once, and handed to all of them; an event's frame
is likewise encoded once for every socket. Fan-out cost then grows with the sockets only by
the sends themselves.

Progress and previews (`COALESCED`) refresh a running row by their own event frame; the state
they also change (the progress an estimate is corrected by) is rebuilt for them at most once
per `progress_interval`: at 100 progress events/s a state of every room every 0.5 s to every
dashboard was the largest share of the bytes sent, for nothing a person sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from queue_manager.core.events import COALESCED, Event
from queue_manager.service.queue import QueueService
from queue_manager.service.tasks import reraise_if_cancelled

log = logging.getLogger(__name__)

_FRAMES_KEPT = 4096
Encoder = Callable[[dict[str, Any]], str]


class RoomFeed:
    def __init__(
        self,
        service: QueueService,
        encode: Encoder,
        interval: float = 0.5,
        progress_interval: float = 2.0,
    ) -> None:
        self._service = service
        self._encode = encode
        self._interval = interval
        self._progress_interval = progress_interval
        self._built_at = -math.inf
        self._dirty = False
        self._version = 0
        self._state = ""
        self._ready = asyncio.Condition()
        self._builder: asyncio.Task[None] | None = None
        self._frames: OrderedDict[str, str] = OrderedDict()

    def changed(self) -> None:
        """Something happened: a new state will follow (coalesced with others)."""
        self._dirty = True
        if self._builder is None or self._builder.done():
            self._builder = asyncio.create_task(self._build(), name="room-state")

    async def newer_than(self, seen: int) -> tuple[int, str]:
        """The first state text after version `seen` (waits for it)."""
        async with self._ready:
            await self._ready.wait_for(lambda: self._version > seen)
            return self._version, self._state

    def event_frame(self, event: Event) -> str:
        """The dashboard frame of an event, encoded once for every socket; the first socket
        to take an event also asks for the state it changed (once, not once per socket)."""
        text = self._frames.get(event.id)
        if text is None:
            self._changed_by(event)
            text = self._encode(
                {
                    "type": "event",
                    "data": {
                        "id": event.id,
                        "type": event.type,
                        "at": event.at,
                        "job": event.job,
                        "user": event.user,
                        "worker": event.worker,
                        "data": event.data,
                    },
                }
            )
            self._frames[event.id] = text
            if len(self._frames) > _FRAMES_KEPT:
                self._frames.popitem(last=False)
        return text

    def _changed_by(self, event: Event) -> None:
        recent = time.monotonic() - self._built_at < self._progress_interval
        if event.type not in COALESCED or not recent:
            self.changed()

    async def _build(self) -> None:
        while self._dirty:
            self._dirty = False
            self._built_at = time.monotonic()
            try:
                state = await self._service.room_state(time.time())
            except Exception:  # Redis away: the next change tries again
                reraise_if_cancelled()
                log.exception("room state failed")
                await asyncio.sleep(self._interval)
                self._dirty = True
                continue
            async with self._ready:
                self._state = self._encode({"type": "state", "data": state})
                self._version += 1
                self._ready.notify_all()
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._builder is not None:
            self._builder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._builder
