"""What every use case works with: the stores, the event hub, the node catalogue, the users'
files, the metrics and the clock, built once by `QueueService` and private to it; and the rule
two kinds of use case share (which queued jobs no known GPU can run, and why)."""

from __future__ import annotations

import logging
from collections import defaultdict

from redis.asyncio import Redis

from queue_manager.core.clock import Clock
from queue_manager.core.ids import JobId
from queue_manager.core.requirements import Requirements, hold_reason
from queue_manager.core.workers import MAY_RUN_JOBS
from queue_manager.service.catalog import Catalog
from queue_manager.service.fanout import EventHub
from queue_manager.service.metrics import Metrics
from queue_manager.settings import Settings
from queue_manager.storage.files import FileStore
from queue_manager.store import ControlStore, JobStore, WorkerStore
from queue_manager.store.announcements import AnnouncementStore
from queue_manager.store.endpoints import EndpointStore
from queue_manager.store.gallery import GalleryStore
from queue_manager.store.room import RoomStore
from queue_manager.store.tokens import TokenStore
from queue_manager.store.workflows import WorkflowStore

log = logging.getLogger("queue_manager.service")


class QueueParts:
    settings: Settings
    _redis: Redis
    _jobs: JobStore
    _workers: WorkerStore
    _control: ControlStore
    _endpoints: EndpointStore
    _room: RoomStore
    _announcements: AnnouncementStore
    _gallery: GalleryStore
    _tokens: TokenStore
    _workflows: WorkflowStore
    _hub: EventHub
    _catalog: Catalog
    _files: FileStore
    _metrics: Metrics
    _clock: Clock

    def _did(self, action: str, details: str, *args: object) -> None:
        """One INFO line and one count per use case that changed something."""
        log.info("%s " + details, action, *args)
        self._metrics.count(action)

    async def refresh_holds(self) -> None:
        """Recompute, for every queued job, whether any known worker can run it and why not
        (after a worker joins, drains or leaves)."""
        snap = await self._jobs.snapshot()
        job_ids = [j.id for lane in snap.lanes for u in lane.users for j in u.jobs]
        if not job_ids:
            return
        by_req: defaultdict[Requirements, list[JobId]] = defaultdict(list)
        for job_id, req in (await self._jobs.requirements(job_ids)).items():
            by_req[req].append(job_id)
        known = [w for w in await self._workers.all() if w.state in MAY_RUN_JOBS]
        holds: dict[JobId, str | None] = {}
        for req, ids in by_req.items():
            holds.update(dict.fromkeys(ids, hold_reason(await self._workers.gaps(req, known))))
        await self._jobs.set_holds(holds)
