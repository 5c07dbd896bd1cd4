"""One reader of the event stream per process, feeding every local subscriber (WebSockets).

Each subscriber has a bounded queue: the reader never waits for a slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator

from redis.exceptions import RedisError

from queue_manager.core.events import COALESCED, QUEUE_MOVES, ROOM_WIDE, Event
from queue_manager.core.ids import UserId
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.store.events import EventLog

log = logging.getLogger(__name__)


def stream_position(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """Events for one consumer (one user's and the room-wide ones, or all of them), in a
    bounded mailbox.

    A consumer that falls behind gets progress and previews coalesced (the newest per job);
    one that still falls `maxsize` events behind is marked `overflowed` and gets no more: it
    must resynchronise (reload state). The reader never waits for a consumer.
    """

    def __init__(self, user: UserId | None, maxsize: int) -> None:
        self.user = user
        self.maxsize = maxsize
        self.overflowed = False
        # A consumer that can take an event at once, from inside the reader's dispatch
        # (True: taken; False: queue it). Tried only while nothing is queued, so order holds;
        # it spares the consumer's task one wake-up per event (see api/sockets.py send_now).
        self.direct: Callable[[Event], bool] | None = None
        self._items: deque[Event | tuple[str, str]] = deque()
        self._latest: dict[tuple[str, str], Event] = {}
        # One future per wait, not an asyncio.Event: the hub offers every event to every
        # subscription, and an Event's waiter bookkeeping was a visible share of that cost.
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Event) -> None:
        if self.overflowed or not self.wants(event):
            return
        if self.direct is not None and not self._items and self.direct(event):
            return
        if event.type in COALESCED and event.job is not None:
            key = (event.job, event.type)
            if key in self._latest:
                self._latest[key] = event  # replaces the pending one, keeps its place
                return
            item: Event | tuple[str, str] = key
        else:
            item = event
        if len(self._items) >= self.maxsize:
            self.overflowed = True
            self._wake()  # the consumer notices
            return
        if isinstance(item, tuple):
            self._latest[item] = event
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def wants(self, event: Event) -> bool:
        """Its own user's events, and the room-wide pushes every page gets (they name no user
        and carry no one's files)."""
        return self.user is None or event.user == self.user or event.type in ROOM_WIDE

    def pending(self) -> int:
        return len(self._items)

    async def get(self) -> Event:
        """The next event; raises `Overflowed` once the consumer fell too far behind."""
        await self._pending()
        return self._take()

    async def get_all(self) -> list[Event]:
        """Every event waiting now, in order (at least one: waits for it); raises `Overflowed`
        once the consumer fell too far behind. A consumer that fell behind takes its backlog
        in one wake-up instead of one per event."""
        await self._pending()
        return [self._take() for _ in range(len(self._items))]

    async def _pending(self) -> None:
        while not self._items:
            if self.overflowed:
                raise Overflowed()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _take(self) -> Event:
        item = self._items.popleft()
        return self._latest.pop(item) if isinstance(item, tuple) else item


class Overflowed(Exception):
    """The consumer fell too far behind; it must resynchronise."""


class EventHub:
    def __init__(self, log_: EventLog, *, block_ms: int = 5000, queue_size: int = 1000) -> None:
        self._log = log_
        self._block_ms = block_ms
        self._queue_size = queue_size
        # Subscriptions by the user they follow (None: every event): an event is offered to
        # its own user's and the room's, not to every socket of the process.
        self._subs: dict[UserId | None, set[Subscription]] = {}
        self.position = "0-0"
        self.running = False
        self.started = asyncio.Event()  # set once reading: from then on no event is missed
        self._stopping = False
        self._queue_moved = asyncio.Event()

    def queue_moved(self) -> asyncio.Event:
        """Set at the next event that may move anyone's queue position: a page waits on it
        instead of reading every other user's events."""
        return self._queue_moved

    @contextlib.contextmanager
    def subscribe(self, user: UserId | None = None) -> Iterator[Subscription]:
        sub = Subscription(user, self._queue_size)
        self._subs.setdefault(user, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs[user]
            subs.discard(sub)
            if not subs:
                del self._subs[user]

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def stop(self) -> None:
        """Ask `run` to return after its current read (the caller then breaks that read by
        closing the stream connection: a cancelled blocking read was seen to hang in redis-py 8
        after a Redis restart, so stopping does not rely on cancellation alone)."""
        self._stopping = True

    async def run(self) -> None:
        """Read the stream until stopped or cancelled, surviving Redis restarts."""
        backoff = 0.05
        self.position = await self._newest()
        self.running = True
        self.started.set()
        try:
            while not self._stopping:
                try:
                    events = await self._log.read(self.position, block_ms=self._block_ms)
                except (RedisError, OSError) as exc:
                    reraise_if_cancelled()
                    if self._stopping:
                        return
                    log.warning("event stream read failed (%s); retrying in %.2fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    await self._resync()
                    continue
                backoff = 0.05
                if events:
                    self._dispatch(events)
        finally:
            self.running = False

    async def _resync(self) -> None:
        """After a lost connection: if Redis came back with an older stream (restored without
        its latest writes), read on from its end."""
        newest = await self._newest()
        if stream_position(newest) < stream_position(self.position):
            self.position = newest

    async def _newest(self) -> str:
        backoff = 0.05
        while True:
            try:
                return await self._log.last_id()
            except (RedisError, OSError) as exc:
                reraise_if_cancelled()
                log.warning("event stream not reachable (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _dispatch(self, events: list[Event]) -> None:
        self.position = events[-1].id
        moved = False
        for event in events:
            moved = moved or event.type in QUEUE_MOVES
            for sub in self._audience(event):
                sub.offer(event)
        if moved:
            self._queue_moved.set()
            self._queue_moved = asyncio.Event()

    def _audience(self, event: Event) -> list[Subscription]:
        """The subscriptions that may want `event` (each still decides by `wants`); a copy, so
        a socket that leaves meanwhile changes nothing here."""
        if event.type in ROOM_WIDE:
            return [sub for subs in self._subs.values() for sub in subs]
        return [*self._subs.get(None, ()), *(self._subs.get(event.user, ()) if event.user else ())]
