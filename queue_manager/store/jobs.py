"""Jobs in Redis: submit, claim, report, finish, cancel, reorder, read, and expire leases.

Job hash fields: id, user, lane, status, seq, attempts, worker, client_id, prompt (JSON),
extra_data (JSON), req (requirement signature), node_types and models (JSON lists), targets
(JSON: ComfyUI's output nodes to execute), created_at, claimed_at, started_at, finished_at, node
(executing now), progress (JSON), outputs (JSON), `ui:<node>` (JSON), error (JSON), hold,
preview and preview_mime (the latest preview image, base64), shape (what decides its run time:
`core.runtimes`), prev_served / served (the user's round-robin stamps before and at its
hand-over, for give_back.lua) and takeback (the job wanting it back, while asked).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import JsonValue

from queue_manager.core.errors import (
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LimitExceeded,
    WorkerNotFound,
    WorkerUnavailable,
)
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import (
    UI_FIELD,
    Job,
    JobError,
    JobHead,
    JobStatus,
    Lane,
    workflow_id_of,
)
from queue_manager.core.queueing import Claimed, ClaimResult, NewJob, Submitted, Wakeup
from queue_manager.core.requirements import NO_WORKERS, Requirements
from queue_manager.core.scheduling import (
    LaneSnapshot,
    Mode,
    QueuedJob,
    QueueSnapshot,
    UserQueue,
)
from queue_manager.store.runtimes import KEPT_THINK, MAX_THINK
from queue_manager.store.scripts import ScriptRunner

_JSON_FIELDS = (
    "prompt",
    "extra_data",
    "node_types",
    "models",
    "progress",
    "outputs",
    "error",
    "targets",
)
# Bookkeeping on a recorded output (record_output.lua), not part of its description.
_RECORD_ONLY = ("n", "attempt")
_OPTIONAL = (
    "worker",
    "client_id",
    "claimed_at",
    "started_at",
    "finished_at",
    "hold",
    "node",
    "phase",
    "workflow_id",
)
# What a job runs: left unread in a `JobHead`.
_RUN_FIELDS = ("prompt", "extra_data", "node_types", "models", "targets")


def claimed_from_json(payload: str) -> Claimed:
    j = json.loads(payload)
    return Claimed(
        id=JobId(j["id"]),
        user=UserId(j["user"]),
        lane=Lane(j["lane"]),
        worker=WorkerId(j["worker"]),
        attempts=int(j["attempts"]),
        client_id=j["client_id"] or None,
        prompt_json=j["prompt"],
        extra_data_json=j["extra_data"],
        created_at=float(j["created_at"]),
        claimed_at=float(j["claimed_at"]),
    )


def _parsed(fields: Mapping[str, str], json_fields: Iterable[str]) -> dict[str, Any]:
    data: dict[str, Any] = dict(fields)
    for name in json_fields:
        raw = data.get(name)
        data[name] = json.loads(raw) if raw else None
    for name in _OPTIONAL:
        if not data.get(name):
            data[name] = None
    data["ui"] = {
        name.removeprefix(UI_FIELD): json.loads(raw)
        for name, raw in fields.items()
        if name.startswith(UI_FIELD)
    }
    return data


def job_from_fields(fields: Mapping[str, str], timeline: Iterable[str] = ()) -> Job:
    data = _parsed(fields, _JSON_FIELDS)
    for name in ("extra_data", "node_types", "models", "outputs", "targets"):
        if data[name] is None:
            data.pop(name)
    data["timeline"] = [json.loads(entry) for entry in timeline]
    return Job.model_validate(data)


def head_from_fields(fields: Mapping[str, str]) -> JobHead:
    """The job's head, its prompt and workflow left unparsed (a job stored before heads had
    `workflow_id` takes it from its `extra_data`)."""
    data = _parsed(fields, ("progress", "outputs", "error"))
    if "workflow_id" not in fields:  # stored before the field existed
        data["workflow_id"] = workflow_id_of(json.loads(fields.get("extra_data") or "{}"))
    for name in _RUN_FIELDS:
        data.pop(name, None)
    if data["outputs"] is None:
        data.pop("outputs")
    return JobHead.model_validate(data)


def _described(raw: str) -> dict[str, JsonValue]:
    """A recorded output as the worker API describes it (`StoredOutput`)."""
    return {k: v for k, v in json.loads(raw).items() if k not in _RECORD_ONLY}


@dataclass(frozen=True)
class LostOutput:
    """A file a job attempt stored in its user's folder before it lost the job."""

    user: UserId
    type: str  # "output" or "temp", as uploaded
    subfolder: str
    filename: str


def _lost_output(raw: str) -> LostOutput | None:
    try:
        d = json.loads(raw)
        return LostOutput(
            UserId(str(d["user"])), str(d["type"]), str(d["subfolder"]), str(d["filename"])
        )
    except (ValueError, KeyError, TypeError):
        return None


class JobStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._keys = runner.keys

    # -- participants -------------------------------------------------------------------

    async def submit(self, job: NewJob) -> Submitted:
        """Queue a job in one round trip. Raises LimitExceeded."""
        fields = ["prompt", job.prompt_json, "extra_data", json.dumps(dict(job.extra_data))]
        fields += ["workflow_id", workflow_id_of(job.extra_data) or ""]
        if job.targets:
            fields += ["targets", json.dumps(list(job.targets))]
        if job.client_id:
            fields += ["client_id", job.client_id]
        if not job.validated:
            fields += ["unvalidated", "1"]
        if job.shape:
            fields += ["shape", job.shape]
        req = job.requirements
        res = await self._run(
            "submit",
            job.id,
            job.user,
            job.lane.value,
            req.signature,
            json.dumps(sorted(req.node_types)),
            json.dumps(sorted(req.models)),
            MAX_THINK,
            KEPT_THINK,
            *fields,
        )
        if res[0] == "limit":
            raise LimitExceeded(job.user, int(res[1]))
        if res[0] == "exists":
            # The same job submitted twice (a retry after a lost reply) is one job; an id that
            # belongs to someone else is refused without saying whose it is.
            if res[1] != job.user:
                raise InvalidTransition(job.id, "taken", "submit")
            return Submitted(job.id, int(res[2]), runnable=True)
        if res[2] == 2:
            return Submitted(job.id, int(res[1]), runnable=False, hold=NO_WORKERS)
        return Submitted(job.id, int(res[1]), runnable=res[2] == 1)

    async def cancel(self, job_id: JobId, reason: str) -> JobStatus:
        """Cancel a queued or running job; returns the status it had."""
        res = await self._run("cancel", job_id, reason)
        if res[0] == "missing":
            raise JobNotFound(job_id)
        if res[0] == "final":
            raise InvalidTransition(job_id, res[1], "cancel")
        return JobStatus(res[1])

    async def reject(self, job_id: JobId, error: JobError) -> bool:
        """Fail a queued job whose prompt turned out invalid; False if it left the queue
        meanwhile (a GPU's ComfyUI judges it then)."""
        res = await self._run("reject", job_id, error.model_dump_json())
        if res[0] == "missing":
            raise JobNotFound(job_id)
        return bool(res[0] == "ok")

    async def mark_validated(self, job_ids: list[JobId]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hdel(self._keys.job(job_id), "unvalidated")
            await pipe.execute()

    async def move_to_front(self, job_id: JobId) -> None:
        self._check_reorder(job_id, await self._run("reorder", job_id, "front", ""))

    async def set_lane(self, job_id: JobId, lane: Lane) -> None:
        self._check_reorder(job_id, await self._run("reorder", job_id, "lane", lane.value))

    @staticmethod
    def _check_reorder(job_id: JobId, res: list[str]) -> None:
        if res[0] == "missing":
            raise JobNotFound(job_id)
        if res[0] == "not_queued":
            raise InvalidTransition(job_id, res[1], "reorder")

    # -- workers --------------------------------------------------------------------------

    async def claim(self, worker_id: WorkerId, *, wait: bool = False) -> Claimed | Wakeup | None:
        """The next job for this worker under the policy, now running and leased; or None.

        With `wait`, a worker that gets nothing is marked idle in the same step: the next
        submission it can run is handed to its inbox (see `wait_inbox`), and anything else
        that may make a job claimable drops a wake-up there.
        """
        res = await self._run("claim", worker_id, "1" if wait else "0")
        if res[0] == "ok":
            return claimed_from_json(res[1])
        if res[0] == "unknown_worker":
            raise WorkerNotFound(worker_id)
        if res[0] == "unavailable":
            raise WorkerUnavailable(worker_id, res[1])
        if res[0] == "stopped":
            return Wakeup.STOP
        return None

    async def wait_inbox(self, worker_id: WorkerId, timeout: float) -> Claimed | Wakeup | None:
        """Block until this idle worker is handed a job (returned), woken, or told to stop
        waiting (a `Wakeup`); None on timeout."""
        got = await self._redis.blpop([self._keys.inbox(worker_id)], timeout=timeout)
        if got is None:
            return None
        item = cast("list[str]", got)[1]
        if item in (Wakeup.WAKE.value, Wakeup.STOP.value):
            return Wakeup(item)
        return claimed_from_json(item)

    async def stop_waiting(self, worker_id: WorkerId) -> None:
        """End this worker's long poll now, or the next one if it is not waiting yet (the
        agent is stopping); a token left over is dropped when it registers or leaves."""
        if await self._redis.exists(self._keys.worker(worker_id)):
            await self._redis.rpush(self._keys.inbox(worker_id), Wakeup.STOP.value)

    async def unwait(self, worker_id: WorkerId) -> ClaimResult:
        """Stop waiting; returns a job handed over in the meantime, if any."""
        res = await self._run("unwait", worker_id)
        return claimed_from_json(res[1]) if res[0] == "ok" else None

    async def release(self, job: Claimed) -> None:
        """Requeue a claimed job that could not be delivered to its worker."""
        await self.release_held(
            job.id, job.worker, job.attempts, f"not delivered to worker {job.worker}"
        )

    async def release_held(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, reason: str
    ) -> None:
        """Requeue a job its worker gives back (the attempt still counts)."""
        await self._run("release", job_id, worker_id, attempt, reason)

    async def give_back(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, reason: str
    ) -> bool:
        """Requeue a job handed early that never started, where it was and without counting
        the attempt (give_back.lua). False: it has started, and stays with the worker."""
        res = await self._run("give_back", job_id, worker_id, attempt, reason)
        if res[0] == "lost":
            raise LeaseLost(job_id, worker_id, res[1])
        return bool(res[0] == "ok")

    async def held_by(self, job_id: JobId, worker_id: WorkerId, attempt: int) -> UserId:
        """The job's user, if `worker_id` holds its current attempt; else LeaseLost."""
        status, worker, attempts, user = await self._redis.hmget(
            self._keys.job(job_id), "status", "worker", "attempts", "user"
        )
        if status is None:
            raise JobNotFound(job_id)
        if status != "running" or worker != worker_id or attempts != str(attempt):
            raise LeaseLost(job_id, worker_id, str(status))
        return UserId(str(user))

    async def heartbeat(
        self, worker_id: WorkerId, job_id: JobId | None = None, attempt: int = 0
    ) -> None:
        """The worker is alive (and still running `job_id`: its lease is renewed)."""
        res = await self._run("heartbeat", worker_id, job_id or "", attempt)
        if res[0] == "unknown_worker":
            raise WorkerNotFound(worker_id)
        if res[0] == "lost" and job_id:
            raise LeaseLost(job_id, worker_id, res[1])

    async def report(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        attempt: int,
        kind: str,
        data: Mapping[str, JsonValue],
        store: Mapping[str, str] | None = None,
    ) -> str:
        """Record a phase or progress of a held job as an event; returns the event id."""
        pairs = [x for kv in (store or {}).items() for x in kv]
        res = await self._run(
            "progress", job_id, worker_id, attempt, kind, json.dumps(dict(data)), *pairs
        )
        if res[0] == "lost":
            raise LeaseLost(job_id, worker_id, res[1])
        return str(res[1])

    async def set_preview(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, image: bytes, mime: str
    ) -> None:
        """Keep the latest preview of a running job (on the job, replaced each time) and
        announce it; the bytes stay out of the event stream."""
        await self.report(
            job_id,
            worker_id,
            attempt,
            EventType.JOB_PREVIEW,
            {"mime": mime, "size": len(image)},
            {"preview": base64.b64encode(image).decode(), "preview_mime": mime},
        )

    async def preview(self, job_id: JobId) -> tuple[str, bytes] | None:
        data, mime = await self._redis.hmget(self._keys.job(job_id), "preview", "preview_mime")
        if not data:
            return None
        return str(mime or "image/jpeg"), base64.b64decode(str(data))

    async def complete(self, job_id: JobId, worker_id: WorkerId, attempt: int) -> None:
        """The attempt finished well; its recorded outputs become the job's outputs."""
        await self._finish(job_id, worker_id, attempt, "completed", "")

    async def record_output(
        self,
        job_id: JobId,
        worker_id: WorkerId,
        attempt: int,
        reported: str,
        stored: Mapping[str, JsonValue],
    ) -> tuple[bool, dict[str, JsonValue]]:
        """Note a file just written for the attempt `worker_id` holds; returns (new, descriptor).
        A name already recorded for this attempt returns the first descriptor and new=False."""
        res = await self._run(
            "record_output", job_id, worker_id, attempt, reported, json.dumps(dict(stored))
        )
        if res[0] == "missing":
            raise JobNotFound(job_id)
        if res[0] == "lost":
            raise LeaseLost(job_id, worker_id, res[1])
        return res[0] == "ok", _described(res[1])

    async def recorded_output(
        self, job_id: JobId, attempt: int, reported: str
    ) -> dict[str, JsonValue] | None:
        raw = await self._redis.hget(self._keys.job_files(job_id), f"{attempt}:{reported}")
        return _described(str(raw)) if raw else None

    async def attempt_outputs(self, job_id: JobId, attempt: int) -> list[dict[str, JsonValue]]:
        """The outputs recorded so far for one attempt, in upload order."""
        prefix = f"{attempt}:"
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.job_files(job_id)))
        found = [json.loads(v) for name, v in fields.items() if name.startswith(prefix)]
        found.sort(key=lambda d: int(d.get("n", 0)))
        return [_described(json.dumps(d)) for d in found]

    async def take_lost_outputs(self, count: int) -> list[LostOutput | None]:
        """Up to `count` files of attempts that lost their job (lib.lua `drop_attempt_files`),
        taken off the list for the caller to delete; None for an entry that does not parse.
        Empty: the list is."""
        raw = await self._redis.lpop(self._keys.lost_outputs, count)
        return [_lost_output(str(r)) for r in cast("list[str] | None", raw) or []]

    async def fail(self, job_id: JobId, worker_id: WorkerId, attempt: int, error: JobError) -> None:
        await self._finish(job_id, worker_id, attempt, "failed", error.model_dump_json())

    async def _finish(
        self, job_id: JobId, worker_id: WorkerId, attempt: int, outcome: str, payload: str
    ) -> None:
        res = await self._run("finish", job_id, worker_id, attempt, outcome, payload)
        if res[0] == "missing":
            raise JobNotFound(job_id)
        if res[0] == "lost":
            raise LeaseLost(job_id, worker_id, res[1])

    async def reap(
        self, worker_timeout: float, batch: int = 100
    ) -> tuple[list[JobId], list[JobId]]:
        """Requeue (or fail, past the attempt limit) jobs whose lease expired."""
        res: list[str] = await self._run("reap", worker_timeout, batch)
        split = res.index("|")
        return [JobId(j) for j in res[:split]], [JobId(j) for j in res[split + 1 :]]

    async def next_lease_deadline(self) -> float | None:
        first = await self._redis.zrange(self._keys.leases, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    # -- reading --------------------------------------------------------------------------

    async def get(self, job_id: JobId) -> Job:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.job(job_id))
            pipe.lrange(self._keys.timeline(job_id), 0, -1)
            fields, timeline = await pipe.execute()
        if not fields:
            raise JobNotFound(job_id)
        return job_from_fields(fields, timeline)

    async def get_many(self, job_ids: list[JobId]) -> list[Job]:
        """Several jobs in one round trip (without timelines); missing ones are skipped."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self._keys.job(job_id))
            rows = await pipe.execute()
        return [job_from_fields(fields) for fields in rows if fields]

    async def user_heads(self, user: UserId) -> list[JobHead]:
        """The user's jobs (queue and history, oldest first) without what they run: a list's
        worth in one reply, their graphs neither sent nor parsed (heads.lua)."""
        rows = cast("list[list[str]]", await self._run("heads", user))
        return [head_from_fields(dict(zip(row[::2], row[1::2], strict=True))) for row in rows]

    async def status_counts(self) -> dict[str, int]:
        """How many jobs are in each status, room-wide."""
        raw = cast("dict[str, str]", await self._redis.hgetall(self._keys.stats))
        return {status: int(n) for status, n in raw.items()}

    async def client_id(self, job_id: JobId) -> str | None:
        """The page (socket `clientId`) that submitted the job, if any."""
        raw = await self._redis.hget(self._keys.job(job_id), "client_id")
        return str(raw) if raw else None

    async def user_counts(self, user: UserId) -> tuple[int, int]:
        """(queued, running) jobs of a user."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._keys.queued, user)
            pipe.hget(self._keys.running, user)
            queued, running = await pipe.execute()
        return int(queued or 0), int(running or 0)

    async def forget(self, user: UserId, job_ids: list[JobId]) -> None:
        """Take finished jobs out of the user's own list (ComfyUI's history delete); the jobs
        stay for the instructor's records."""
        if job_ids:
            await self._redis.zrem(self._keys.user_jobs(user), *job_ids)

    async def user_job_ids(self, user: UserId) -> list[JobId]:
        return cast("list[JobId]", await self._redis.zrange(self._keys.user_jobs(user), 0, -1))

    async def requirements(self, job_ids: list[JobId]) -> dict[JobId, Requirements]:
        """What each job needs (node types, models), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(self._keys.job(job_id), "node_types", "models")
            rows = await pipe.execute()
        return {
            job_id: Requirements(frozenset(json.loads(nodes)), frozenset(json.loads(models)))
            for job_id, (nodes, models) in zip(job_ids, rows, strict=True)
            if nodes is not None
        }

    async def set_holds(self, holds: Mapping[JobId, str | None]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id, reason in holds.items():
                pipe.hset(self._keys.job(job_id), "hold", reason or "")
            await pipe.execute()

    async def snapshot(self) -> QueueSnapshot:
        return snapshot_from_reply(await self._run("snapshot"))


def snapshot_from_reply(reply: list[Any]) -> QueueSnapshot:
    """The queue as `lib.lua`'s queue_snapshot() returns it."""
    mode, front, paused, lanes = reply
    return QueueSnapshot(
        mode=Mode(mode),
        front=tuple((JobId(j), UserId(u)) for j, u in zip(front[::2], front[1::2], strict=True)),
        lanes=tuple(
            LaneSnapshot(
                lane=Lane(name),
                users=tuple(
                    UserQueue(
                        user=UserId(user),
                        served=float(score),
                        jobs=tuple(
                            QueuedJob(JobId(j), int(float(s)))
                            for j, s in zip(jobs[::2], jobs[1::2], strict=True)
                        ),
                    )
                    for user, score, jobs in users
                ),
            )
            for name, users in lanes
        ),
        paused_users=frozenset(UserId(u) for u in paused),
    )
