"""The whole room at a glance, for the instructor's dashboard (`GET /admin/api/state`).

A handful of pipelined reads (never a job's prompt or workflow), shaped into plain JSON: the
queue with true positions, running jobs with progress, workers, per-user counts and waits, and
the latest failures.
"""

from __future__ import annotations

import json
from typing import Any, cast

from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import LANES
from queue_manager.core.scheduling import positions
from queue_manager.service.queue import QueueService
from queue_manager.store.accounts import AccountStore
from queue_manager.store.keys import Keys

FAILURES_SHOWN = 20
_QUEUED_FIELDS = ("user", "lane", "created_at", "hold")
_RUNNING_FIELDS = (
    "user",
    "lane",
    "worker",
    "attempts",
    "claimed_at",
    "started_at",
    "node",
    "progress",
)
_FAILED_FIELDS = ("user", "worker", "finished_at", "error")


async def room_state(service: QueueService, accounts: AccountStore, now: float) -> dict[str, Any]:
    keys = Keys(service.settings.key_prefix)
    redis = service.redis
    room = await service.control.room()
    snap = await service.jobs.snapshot()
    order = positions(snap)
    queued_ids = [j.id for lane in snap.lanes for u in lane.users for j in u.jobs]
    front = {job_id for job_id, _ in snap.front}
    running_ids = cast("list[JobId]", await redis.zrange(keys.leases, 0, -1))
    failed_ids = cast("list[JobId]", await redis.lrange(keys.failures, 0, FAILURES_SHOWN - 1))
    people = await accounts.all()
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in queued_ids:
            pipe.hmget(keys.job(job_id), *_QUEUED_FIELDS)
        for job_id in running_ids:
            pipe.hmget(keys.job(job_id), *_RUNNING_FIELDS)
            pipe.hstrlen(keys.job(job_id), "preview")
        for job_id in failed_ids:
            pipe.hmget(keys.job(job_id), *_FAILED_FIELDS)
        pipe.hgetall(keys.queued)
        pipe.hgetall(keys.running)
        for person in people:
            pipe.hgetall(keys.user_stats(person.name))
            pipe.hgetall(keys.user_ctl(person.name))
        rows = iter(await pipe.execute())
    queue = [
        _queued(job_id, next(rows), order.get(job_id), job_id in front) for job_id in queued_ids
    ]
    queue.sort(key=lambda j: (j["position"] is None, j["position"] or 0, j["created_at"]))
    running = [_running(job_id, next(rows), next(rows)) for job_id in running_ids]
    failures = [_failure(job_id, next(rows)) for job_id in failed_ids]
    queued_by_user, running_by_user = next(rows), next(rows)
    users = [
        _user(
            person.name,
            person.role.value,
            next(rows),
            next(rows),
            int(queued_by_user.get(person.name, 0)),
            int(running_by_user.get(person.name, 0)),
        )
        for person in people
    ]
    workers = [
        {
            "id": w.id,
            "state": w.state.value,
            "job": w.job,
            "heartbeat_age": max(0.0, now - w.seen),
            "joined": w.joined,
            "done": w.done,
            "failed": w.failed,
            "info": w.info,
        }
        for w in await service.workers.all()
    ]
    lanes = {lane.value: 0 for lane in LANES}
    for job in queue:
        lanes[job["lane"]] = lanes.get(job["lane"], 0) + 1
    return {
        "now": now,
        "paused": room.paused,
        "mode": room.mode.value,
        "broadcast": room.broadcast,
        "limits": {"max_queued": room.max_queued, "max_running": room.max_running},
        "lanes": lanes,
        "queue": queue,
        "running": running,
        "workers": workers,
        "users": users,
        "failures": [f for f in failures if f is not None],
    }


def _float(raw: Any) -> float | None:
    return float(raw) if raw not in (None, "") else None


def _queued(job_id: JobId, row: list[Any], position: int | None, front: bool) -> dict[str, Any]:
    user, lane, created_at, hold = row
    return {
        "id": job_id,
        "user": user,
        "lane": lane,
        "position": position,
        "hold": hold or None,
        "created_at": _float(created_at) or 0.0,
        "front": front,
    }


def _running(job_id: JobId, row: list[Any], preview_len: int) -> dict[str, Any]:
    user, lane, worker, attempts, claimed_at, started_at, node, progress = row
    shown = json.loads(progress) if progress else None
    return {
        "id": job_id,
        "user": user,
        "lane": lane,
        "worker": worker,
        "attempt": int(attempts or 0),
        "claimed_at": _float(claimed_at),
        "started_at": _float(started_at),
        "node": node or None,
        "progress": {"value": shown.get("value"), "max": shown.get("max")} if shown else None,
        "has_preview": bool(preview_len),
    }


def _failure(job_id: JobId, row: list[Any]) -> dict[str, Any] | None:
    user, worker, finished_at, error = row
    if user is None:  # expired from Redis
        return None
    err = json.loads(error) if error else {}
    return {
        "id": job_id,
        "user": user,
        "worker": worker or None,
        "finished_at": _float(finished_at),
        "error": {k: err.get(k) for k in ("type", "message", "node_id", "node_type")},
    }


def _user(
    name: UserId,
    role: str,
    stats: dict[str, str],
    ctl: dict[str, str],
    queued: int,
    running: int,
) -> dict[str, Any]:
    waits = int(stats.get("wait_n", 0))
    return {
        "user": name,
        "role": role,
        "queued": queued,
        "running": running,
        "completed": int(stats.get("completed", 0)),
        "failed": int(stats.get("failed", 0)),
        "cancelled": int(stats.get("cancelled", 0)),
        "paused": ctl.get("paused") == "1",
        "max_queued": int(ctl["max_queued"]) if "max_queued" in ctl else None,
        "max_running": int(ctl["max_running"]) if "max_running" in ctl else None,
        "avg_wait": float(stats["wait_sum"]) / waits if waits else None,
        "last_wait": _float(stats.get("last_wait")),
    }
