"""When jobs will start and finish: the room read once, played forward by `core.eta`, and run
times recorded as jobs complete (`store.runtimes`).

The participant's panel and the instructor's dashboard read the same estimate, so they never
disagree about a job.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from queue_manager.core.endpoint_status import EndpointStatus
from queue_manager.core.endpoints import EndpointConfig
from queue_manager.core.eta import Estimate, Gpu, Room, Running, estimate, gpus_of
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.requirements import Requirements
from queue_manager.core.room import RoomRows, RunningRow
from queue_manager.core.runtimes import UNKNOWN_SHAPE, Shape, run_sample
from queue_manager.service.parts import QueueParts
from queue_manager.store.connection import OUTAGES
from queue_manager.store.runtimes import RunTimeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomView:
    """One read of the room and what the estimate made of it."""

    rows: RoomRows
    endpoints: list[tuple[EndpointConfig, EndpointStatus]]
    estimates: dict[JobId, Estimate]


class EstimateCases(QueueParts):
    _runtimes: RunTimeStore

    async def room_view(self, now: float, failures: int = 0) -> RoomView:
        """The room read once (with its latest `failures`), and every job's estimated start
        and finish as if the queue ran now: paused or not, the caller says which it is."""
        rows = await self._room.read(failures)
        configs = await self._endpoints.all()
        endpoints = [(c, await self._endpoints.status(c.name)) for c in configs]
        statuses = {status.name: status for _, status in endpoints}
        return RoomView(rows, endpoints, await self._estimate(rows, statuses, now))

    async def _estimate(
        self, rows: RoomRows, endpoints: Mapping[str, EndpointStatus], now: float
    ) -> dict[JobId, Estimate]:
        gpus = gpus_of(rows.workers, endpoints, now)
        ids = [r.id for r in rows.queued] + [r.id for r in rows.running]
        shapes = await self._runtimes.shapes(ids) if ids else {}
        history = await self._runtimes.history([g.key for g in gpus], shapes.values())
        limits = {
            p.name: int(p.controls["max_running"])
            for p in rows.people
            if "max_running" in p.controls
        }
        room = Room(
            snapshot=rows.snapshot,
            gpus=gpus,
            running=tuple(_running(r, shapes.get(r.id, UNKNOWN_SHAPE)) for r in rows.running),
            shapes=shapes,
            eligible=await self._eligible(rows, gpus),
            max_running=rows.control.max_running,
            user_max_running=limits,
            returns=await self._runtimes.returns(now),
        )
        return estimate(room, history, now)

    async def _eligible(
        self, rows: RoomRows, gpus: tuple[Gpu, ...]
    ) -> dict[JobId, frozenset[WorkerId]]:
        """The GPUs that can run each queued job, where not all of them can (held: none)."""
        takers = {g.worker for g in gpus if g.takes_jobs}
        workers = [w for w in rows.workers if w.id in takers]
        found: dict[JobId, frozenset[WorkerId]] = {r.id: frozenset() for r in rows.queued if r.hold}
        open_ids = [r.id for r in rows.queued if not r.hold]
        if not workers or not open_ids:
            return found
        by_req: defaultdict[Requirements, list[JobId]] = defaultdict(list)
        for job_id, req in (await self._jobs.requirements(open_ids)).items():
            by_req[req].append(job_id)
        for req, job_ids in by_req.items():
            gaps = await self._workers.gaps(req, workers)
            able = frozenset(w for w, g in gaps.items() if not g.node_types and not g.models)
            if len(able) < len(workers):
                found.update(dict.fromkeys(job_ids, able))
        return found

    async def _note_run_time(self, job_id: JobId) -> None:
        """Add a completed job's run time to its GPU's history. The job is complete whatever
        happens here: a lost sample is only a slightly staler estimate, never an error."""
        try:
            run = await self._runtimes.finished_run(job_id)
            if run is None:
                return
            found = run_sample(
                run.worker, run.shape, run.claimed_at, run.started_at, run.finished_at
            )
            if found is not None:
                await self._runtimes.record(found[0], run.shape, found[1])
            if run.finished_at is not None:
                await self._runtimes.note_result(run.user, run.finished_at, run.shape)
        except OUTAGES:
            log.warning("run time of job=%s not recorded (Redis unavailable)", job_id)


def _running(row: RunningRow, shape: Shape) -> Running:
    return Running(
        id=row.id,
        user=row.user,
        worker=row.worker,
        shape=shape,
        claimed_at=row.claimed_at,
        started_at=row.started_at,
        progress=_progress(row.progress),
    )


def _progress(raw: str | None) -> tuple[int, int] | None:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    value, top = data.get("value"), data.get("max")
    if isinstance(value, int) and isinstance(top, int) and top > 0:
        return value, top
    return None


def user_limit(rows: RoomRows, user: UserId) -> tuple[bool, bool]:
    """(paused, at the running limit) of one user, as the claim script judges them."""
    person = next((p for p in rows.people if p.name == user), None)
    controls = person.controls if person is not None else {}
    paused = controls.get("paused") == "1" or user in rows.snapshot.paused_users
    limit = int(controls.get("max_running", rows.control.max_running))
    running = sum(1 for r in rows.running if r.user == user)
    return paused, 0 <= limit <= running
