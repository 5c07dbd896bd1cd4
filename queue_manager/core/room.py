"""The whole room at a glance, as the instructor's dashboard shows it (pure).

The store reads the rows in one consistent step (`store.room`); this shapes them: the queue in
true claim order, running jobs with their progress, workers, per-user counts and waits, and the
latest failures. Never a prompt, a workflow or a password hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from queue_manager.core.accounts import Role
from queue_manager.core.control import RoomControl
from queue_manager.core.endpoint_status import EndpointStatus, typical_cold_start
from queue_manager.core.endpoints import EndpointConfig
from queue_manager.core.eta import UNKNOWN, Estimate
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import LANES
from queue_manager.core.scheduling import QueueSnapshot, positions
from queue_manager.core.workers import WorkerInfo


@dataclass(frozen=True)
class QueuedRow:
    id: JobId
    user: UserId
    lane: str
    created_at: float
    hold: str | None


@dataclass(frozen=True)
class RunningRow:
    id: JobId
    user: UserId
    lane: str
    worker: WorkerId | None
    attempt: int
    claimed_at: float | None
    started_at: float | None
    node: str | None
    progress: str | None  # JSON as the worker reported it
    has_preview: bool
    phase: str | None = None  # before it starts: e.g. next on its GPU, behind the running job


@dataclass(frozen=True)
class FailureRow:
    id: JobId
    user: UserId
    worker: WorkerId | None
    finished_at: float | None
    error: str | None  # JSON


@dataclass(frozen=True)
class PersonRow:
    name: UserId
    role: Role
    stats: dict[str, str]  # completed, failed, cancelled, wait_sum, wait_n, last_wait
    controls: dict[str, str]  # paused, max_queued, max_running (overrides only)
    queued: int
    running: int


@dataclass(frozen=True)
class RoomRows:
    snapshot: QueueSnapshot
    control: RoomControl
    queued: list[QueuedRow]  # in snapshot order
    running: list[RunningRow]
    failures: list[FailureRow]  # newest first
    people: list[PersonRow]
    workers: list[WorkerInfo]


class QueuedJob(TypedDict):
    id: JobId
    user: UserId
    lane: str
    position: int | None
    hold: str | None
    created_at: float
    front: bool
    # Seconds from `now` (as if the queue ran, when it is paused); None: no GPU will take it
    eta_start: float | None
    eta_finish: float | None


class ProgressShown(TypedDict):
    value: Any
    max: Any


class RunningJob(TypedDict):
    id: JobId
    user: UserId
    lane: str
    worker: WorkerId | None
    attempt: int
    claimed_at: float | None
    started_at: float | None
    node: str | None
    progress: ProgressShown | None
    has_preview: bool
    phase: str | None  # before it starts: e.g. next on its GPU, behind the running job
    eta_finish: float | None  # seconds from `now`


class WorkerShown(TypedDict):
    id: WorkerId
    state: str
    job: JobId | None
    next: JobId | None  # handed early: waits in its ComfyUI's queue behind `job`
    heartbeat_age: float
    joined: float
    done: int
    failed: int
    info: dict[str, Any]


class EndpointShown(TypedDict):
    name: str
    kind: str
    url: str
    slots: int
    prefetch: int  # jobs kept waiting in its own queue (kind comfyui, one machine)
    state: str  # cold | starting | ready | busy | failing
    reason: str
    since: float
    running: int
    last_cold_start: float | None
    typical_cold_start: float | None


class UserShown(TypedDict):
    user: UserId
    role: str
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int
    paused: bool
    max_queued: int | None
    max_running: int | None
    avg_wait: float | None
    last_wait: float | None


class FailureShown(TypedDict):
    id: JobId
    user: UserId
    worker: WorkerId | None
    finished_at: float | None
    error: dict[str, Any]


class Limits(TypedDict):
    max_queued: int
    max_running: int


class RoomState(TypedDict):
    now: float
    paused: bool
    mode: str
    broadcast: str
    limits: Limits
    lanes: dict[str, int]
    queue: list[QueuedJob]
    running: list[RunningJob]
    workers: list[WorkerShown]
    endpoints: list[EndpointShown]
    users: list[UserShown]
    failures: list[FailureShown]


def room_state(
    rows: RoomRows,
    now: float,
    endpoints: Sequence[tuple[EndpointConfig, EndpointStatus]] = (),
    estimates: Mapping[JobId, Estimate] | None = None,
) -> RoomState:
    """The dashboard's view. Positions and estimates are given while the queue is paused too
    (as if it ran now), so that moving a job visibly moves it."""
    order = positions(rows.snapshot)
    front = {job_id for job_id, _ in rows.snapshot.front}
    etas = estimates or {}
    queue = [
        _queued(row, order.get(row.id), row.id in front, etas.get(row.id, UNKNOWN))
        for row in rows.queued
    ]
    queue.sort(key=lambda j: (j["position"] is None, j["position"] or 0, j["created_at"]))
    lanes = {lane.value: 0 for lane in LANES}
    for job in queue:
        lanes[job["lane"]] = lanes.get(job["lane"], 0) + 1
    room = rows.control
    return {
        "now": now,
        "paused": room.paused,
        "mode": room.mode.value,
        "broadcast": room.broadcast,
        "limits": {"max_queued": room.max_queued, "max_running": room.max_running},
        "lanes": lanes,
        "queue": queue,
        "running": [_running(row, etas.get(row.id, UNKNOWN)) for row in rows.running],
        "workers": [_worker(w, now) for w in rows.workers],
        "endpoints": [_endpoint(config, status) for config, status in endpoints],
        "users": [_user(person) for person in rows.people],
        "failures": [_failure(row) for row in rows.failures],
    }


def _endpoint(config: EndpointConfig, status: EndpointStatus) -> EndpointShown:
    """Never its headers: they hold API keys."""
    return {
        "name": config.name,
        "kind": config.kind.value,
        "url": config.url,
        "slots": config.slots,
        "prefetch": config.prefetch,
        "state": status.phase.value,
        "reason": status.reason,
        "since": status.since,
        "running": status.running,
        "last_cold_start": status.last_cold_start,
        "typical_cold_start": typical_cold_start(status.cold_starts),
    }


def _queued(row: QueuedRow, position: int | None, front: bool, eta: Estimate) -> QueuedJob:
    return {
        "id": row.id,
        "user": row.user,
        "lane": row.lane,
        "position": position,
        "hold": row.hold,
        "created_at": row.created_at,
        "front": front,
        "eta_start": _seconds(eta.start),
        "eta_finish": _seconds(eta.finish),
    }


def _running(row: RunningRow, eta: Estimate) -> RunningJob:
    shown = json.loads(row.progress) if row.progress else None
    return {
        "id": row.id,
        "user": row.user,
        "lane": row.lane,
        "worker": row.worker,
        "attempt": row.attempt,
        "claimed_at": row.claimed_at,
        "started_at": row.started_at,
        "node": row.node,
        "progress": {"value": shown.get("value"), "max": shown.get("max")} if shown else None,
        "has_preview": row.has_preview,
        "phase": row.phase if row.started_at is None else None,
        "eta_finish": _seconds(eta.finish),
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _worker(w: WorkerInfo, now: float) -> WorkerShown:
    return {
        "id": w.id,
        "state": w.state.value,
        "job": w.job,
        "next": w.next,
        "heartbeat_age": max(0.0, now - w.seen),
        "joined": w.joined,
        "done": w.done,
        "failed": w.failed,
        "info": w.info,
    }


def _failure(row: FailureRow) -> FailureShown:
    err = json.loads(row.error) if row.error else {}
    return {
        "id": row.id,
        "user": row.user,
        "worker": row.worker,
        "finished_at": row.finished_at,
        "error": {k: err.get(k) for k in ("type", "message", "node_id", "node_type")},
    }


def _user(person: PersonRow) -> UserShown:
    stats, ctl = person.stats, person.controls
    waits = int(stats.get("wait_n", 0))
    return {
        "user": person.name,
        "role": person.role.value,
        "queued": person.queued,
        "running": person.running,
        "completed": int(stats.get("completed", 0)),
        "failed": int(stats.get("failed", 0)),
        "cancelled": int(stats.get("cancelled", 0)),
        "paused": ctl.get("paused") == "1",
        "max_queued": int(ctl["max_queued"]) if "max_queued" in ctl else None,
        "max_running": int(ctl["max_running"]) if "max_running" in ctl else None,
        "avg_wait": float(stats["wait_sum"]) / waits if waits else None,
        "last_wait": float(stats["last_wait"]) if stats.get("last_wait") else None,
    }
