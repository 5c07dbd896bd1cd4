"""The dashboard's rows, read in one round trip (`lua/room.lua`); shaped by `core.room`."""

from __future__ import annotations

from typing import Any, cast

from queue_manager.core.accounts import Role
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.room import FailureRow, PersonRow, QueuedRow, RoomRows, RunningRow
from queue_manager.store.control import room_control_from_fields
from queue_manager.store.jobs import snapshot_from_reply
from queue_manager.store.scripts import ScriptRunner
from queue_manager.store.workers import worker_from_fields


class RoomStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run

    async def read(self, failures: int) -> RoomRows:
        snapshot, control, queued, running, failed, q_by, r_by, people, workers = await self._run(
            "room", failures
        )
        queued_by, running_by = _hash(q_by), _hash(r_by)
        return RoomRows(
            snapshot=snapshot_from_reply(snapshot),
            control=room_control_from_fields(_hash(control)),
            queued=[_queued(row) for row in queued],
            running=[_running(row) for row in running],
            failures=[_failure(row) for row in failed],
            people=[
                PersonRow(
                    name=UserId(name),
                    role=Role(role),
                    stats=_hash(stats),
                    controls=_hash(ctl),
                    queued=int(queued_by.get(name, 0)),
                    running=int(running_by.get(name, 0)),
                )
                for name, role, stats, ctl in people
            ],
            workers=[worker_from_fields(_hash(w)) for w in workers],
        )


def _hash(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _float(raw: str | None) -> float | None:
    return float(raw) if raw else None


def _queued(row: list[Any]) -> QueuedRow:
    job, user, lane, created_at, hold = row
    return QueuedRow(JobId(job), UserId(user), lane, _float(created_at) or 0.0, hold or None)


def _running(row: list[Any]) -> RunningRow:
    job, user, lane, worker, attempts, claimed_at, started_at, node, progress, phase, preview = row
    return RunningRow(
        id=JobId(job),
        user=UserId(user),
        lane=lane,
        worker=WorkerId(worker) if worker else None,
        attempt=int(attempts or 0),
        claimed_at=_float(claimed_at),
        started_at=_float(started_at),
        node=node or None,
        progress=progress or None,
        has_preview=bool(preview),
        phase=phase or None,
    )


def _failure(row: list[Any]) -> FailureRow:
    job, user, worker, finished_at, error = row
    return FailureRow(
        JobId(job),
        UserId(user),
        WorkerId(worker) if worker else None,
        _float(cast("str | None", finished_at)),
        error or None,
    )
