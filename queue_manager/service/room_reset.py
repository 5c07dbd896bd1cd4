"""The next workshop's clean slate, as the operator's `room reset` asks for it: the room's live
jobs, its history of finished jobs, and its participants' accounts and sessions.

The files are `storage`'s (the command removes them itself); this is the Redis side. Each
method is one use case and logs one INFO line.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from queue_manager.core.accounts import Role
from queue_manager.core.clock import Clock
from queue_manager.core.errors import InvalidTransition, JobNotFound
from queue_manager.core.ids import UserId
from queue_manager.service.accounts import open_accounts
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.history import HistoryStore
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner

log = logging.getLogger(__name__)


class RoomReset:
    def __init__(self, settings: Settings, redis: Redis, clock: Clock = time.time) -> None:
        self._clock = clock
        self._queue = QueueService(settings, redis, clock)  # its cases only: no loops started
        self._accounts = open_accounts(redis, settings, clock)
        self._history = HistoryStore(ScriptRunner(redis, Keys(settings.key_prefix), clock))

    async def live_jobs(self) -> tuple[int, int]:
        """(queued, running) jobs in the room."""
        return await self._history.live_jobs()

    async def instructors(self) -> set[UserId]:
        return {a.name for a in await self._accounts.all() if a.role is Role.INSTRUCTOR}

    async def cancel_live_jobs(self, by: UserId) -> int:
        """Cancel every queued and running job (a running one's worker is told to stop)."""
        state = await self._queue.room_state(self._clock())
        ids = [j["id"] for j in state["queue"]] + [j["id"] for j in state["running"]]
        cancelled = 0
        for job_id in ids:
            try:
                await self._queue.cancel(job_id, by)
            except (JobNotFound, InvalidTransition):
                continue  # finished (or forgotten) meanwhile
            cancelled += 1
        return cancelled

    async def clear_history(self, by: UserId) -> int:
        """Forget every finished job; returns how many. An output shown to everyone is taken
        off their screens first (its file is about to go)."""
        if await self._queue.showcase() is not None:
            await self._queue.stop_showing(by)
        forgotten = await self._history.clear()
        log.info("history cleared jobs=%d by=%s", forgotten, by)
        return forgotten

    async def remove_participants(self, by: UserId) -> list[UserId]:
        """Remove every participant's account (their sessions end with it)."""
        gone = [a.name for a in await self._accounts.all() if a.role is Role.PARTICIPANT]
        for name in gone:
            await self._accounts.remove(name)
        log.info("participants removed users=%d by=%s", len(gone), by)
        return gone

    async def forget_first_visits(self, by: UserId) -> None:
        """The next participants' first visit opens the instructor's first workflow again."""
        await self._queue.forget_first_visits(by)

    async def sign_out_participants(self, by: UserId) -> list[UserId]:
        return await self._accounts.sign_out_room(by)
