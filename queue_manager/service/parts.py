"""What every use case works with: the stores, the event hub, the node catalogue, the users'
files, the metrics and the clock, built once by `QueueService` and private to it; and the rules
several kinds of use case share (which queued jobs no known GPU can run, and why; the files of
attempts that lost their job, deleted)."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import PurePosixPath

from redis.asyncio import Redis

from queue_manager.core.clock import Clock
from queue_manager.core.errors import UnsafePath
from queue_manager.core.ids import JobId
from queue_manager.core.paths import Kind
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

# Lost attempts' files deleted per read of their list.
LOST_OUTPUTS_BATCH = 100


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

    async def delete_lost_outputs(self) -> int:
        """Delete the files that attempts stored before they lost their job to the queue (its
        lease expired, its worker restarted, left, was removed or gave it back): the attempt
        that finishes the job lists its own, so a re-run leaves one copy of each output in the
        user's folder. Called wherever a job may have gone back, and by the reaper's tick.
        Returns how many were deleted."""
        deleted = 0
        while lost := await self._jobs.take_lost_outputs(LOST_OUTPUTS_BATCH):
            for f in lost:
                if f is None:
                    log.warning("an entry of the lost outputs' list was not understood: skipped")
                    continue
                kind: Kind = "temp" if f.type == "temp" else "outputs"
                rel = PurePosixPath(f.subfolder, f.filename)
                try:  # the store checks every step of the path (entries are not trusted)
                    await self._files.discard(kind, f.user, rel)
                except (UnsafePath, OSError) as exc:
                    log.warning("a lost attempt's file %s was not deleted: %s", f, exc)
                    continue
                deleted += 1
                self._did("lost output deleted", "user=%s file=%s", f.user, rel)
        return deleted

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
