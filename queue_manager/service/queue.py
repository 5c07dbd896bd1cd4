"""`QueueService`: the one way into the queue for every route, socket and command.

Each use case is one method (the participants', the workers' and the instructor's live in
`participants`, `dispatch` and `steering`); each rules on what it is asked, logs one INFO line
naming the job, worker and user it touched, and counts itself in the metrics. Routes parse,
call one method and map the result. The stores behind it are private.

It also owns the background loops of a queue-manager process (the event hub that feeds every
socket, the lease reaper, the metrics' event follower), for the duration of `running()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from queue_manager.core.clock import Clock
from queue_manager.core.control import RoomControl
from queue_manager.service.catalog import Catalog
from queue_manager.service.dispatch import DispatchCases
from queue_manager.service.endpoints import EndpointCases
from queue_manager.service.fanout import EventHub
from queue_manager.service.gallery import GalleryCases
from queue_manager.service.metrics import Metrics
from queue_manager.service.participants import ParticipantCases
from queue_manager.service.room_wide import RoomWideCases
from queue_manager.service.steering import SteeringCases
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.service.templates import TemplateCases
from queue_manager.service.workflows import WorkflowCases
from queue_manager.settings import Settings
from queue_manager.storage.files import FileStore
from queue_manager.store import ControlStore, EventLog, JobStore, ScriptRunner, WorkerStore
from queue_manager.store.announcements import AnnouncementStore
from queue_manager.store.catalog import CatalogStore
from queue_manager.store.connection import OUTAGES as STORE_OUTAGES
from queue_manager.store.connection import connect
from queue_manager.store.endpoints import EndpointStore
from queue_manager.store.gallery import GalleryStore
from queue_manager.store.keys import Keys
from queue_manager.store.room import RoomStore
from queue_manager.store.runtimes import RunTimeStore
from queue_manager.store.tokens import TokenStore
from queue_manager.store.workflows import WorkflowStore

log = logging.getLogger(__name__)

__all__ = ["STORE_OUTAGES", "QueueService"]

# How long readiness waits for Redis before saying it is not there.
READY_TIMEOUT = 0.5
# How long stopping waits for the background loops to end.
STOP_TIMEOUT = 5.0


class QueueService(
    ParticipantCases,
    DispatchCases,
    SteeringCases,
    EndpointCases,
    WorkflowCases,
    GalleryCases,
    RoomWideCases,
    TemplateCases,
):
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        clock: Clock = time.time,
        *,
        files: FileStore | None = None,
    ) -> None:
        self.settings = settings
        self._redis = redis
        keys = Keys(settings.key_prefix)
        runner = ScriptRunner(redis, keys, clock)
        self._jobs = JobStore(runner)
        self._workers = WorkerStore(runner)
        self._control = ControlStore(runner)
        self._endpoints = EndpointStore(runner)
        self._room = RoomStore(runner)
        self._announcements = AnnouncementStore(runner)
        self._gallery = GalleryStore(runner)
        self._tokens = TokenStore(redis, keys)
        self._runtimes = RunTimeStore(redis, keys)
        self._workflows = WorkflowStore(redis, keys)
        self._files = files or FileStore(settings.data_dir)
        self._catalog = Catalog(CatalogStore(runner))
        self._metrics = Metrics()
        # The hub's blocking reads get a client of their own (no retries: the hub reconnects
        # by itself), so that stopping can close its connection: a cancelled blocking read was
        # seen to hang in redis-py 8 after a Redis restart.
        self._stream_redis = connect(str(settings.redis_url), retries=0)
        self._hub = EventHub(EventLog(self._stream_redis, keys))
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    async def initialize(self) -> None:
        """Room defaults from the settings (what the instructor changed live is kept), and
        the worker tokens the settings preset (compose, rehearsals)."""
        s = self.settings
        defaults = RoomControl(
            paused=False,
            mode=s.scheduling_mode,
            max_queued=s.max_queued_per_user,
            max_running=s.max_running_per_user,
            max_attempts=s.max_attempts,
        )
        await self._control.initialize(
            defaults, events_maxlen=s.events_maxlen, lease_seconds=s.lease_seconds
        )

    # -- the process ---------------------------------------------------------------------

    async def reap(self) -> float | None:
        """Requeue (or fail, past the attempt limit) the jobs of lost workers, and delete
        the files their lost attempts had stored (those of any other lost attempt since the
        last tick too); returns the next lease deadline."""
        requeued, failed = await self._jobs.reap(self.settings.worker_timeout_seconds)
        for job_id in requeued:
            self._did("requeued", "job=%s reason=lease expired", job_id)
        for job_id in failed:
            self._did("failed", "job=%s reason=attempt limit reached", job_id)
        await self.delete_lost_outputs()
        return await self._jobs.next_lease_deadline()

    async def run_reaper(self) -> None:
        """Reap until cancelled, sleeping until the next lease deadline."""
        interval = self.settings.heartbeat_seconds
        while True:
            try:
                nxt = await self.reap()
            except Exception:  # one tick; the next one tries again
                reraise_if_cancelled()
                log.exception("reaper tick failed")
                nxt = None
            delay = interval if nxt is None else min(interval, max(nxt - self._clock(), 0.01))
            await asyncio.sleep(delay)

    async def ready(self) -> dict[str, bool]:
        """Whether this process can serve: Redis answers (within READY_TIMEOUT) and the
        background loops run."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                redis_ok = bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            redis_ok = False
        return {"redis": redis_ok, "background": self.background_ok()}

    def background_ok(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks) and self._hub.running

    async def metrics_text(self) -> bytes:
        """Prometheus' text exposition, the room gauges read from Redis now."""
        counts = await self._jobs.status_counts()
        snapshot = await self._jobs.snapshot()
        workers = await self._workers.all()
        # The metrics' own subscription is not a client.
        sockets = max(0, self._hub.subscribers - 1)
        return self._metrics.render(counts, snapshot, workers, sockets)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[QueueService]:
        """Run the hub, the reaper and the metrics follower for the duration of the block
        (the app's lifespan)."""
        await self.initialize()
        self._tasks = tasks = [
            asyncio.create_task(self._hub.run(), name="event-hub"),
            asyncio.create_task(self.run_reaper(), name="lease-reaper"),
            asyncio.create_task(self._metrics.follow(self._hub), name="metrics"),
        ]
        try:
            await self._hub.started.wait()
            yield self
        finally:
            self._hub.stop()
            await self._stream_redis.connection_pool.disconnect()
            for task in tasks:
                task.cancel()
            # Bounded: a read cancelled inside redis-py was seen to hang (after a Redis restart,
            # and once at a plain shutdown); the process is stopping, so it is left behind.
            _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in stuck:
                log.warning("background task %s did not stop within %ss", task.get_name(),
                            STOP_TIMEOUT)  # fmt: skip
            await self._stream_redis.aclose()
