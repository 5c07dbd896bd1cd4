"""GPU workers in Redis: registration with capabilities, state, and what they lack for a job."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import cast

from pydantic import JsonValue

from queue_manager.core.errors import WorkerNotFound
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.queueing import Signal
from queue_manager.core.requirements import Capabilities, Requirements
from queue_manager.core.workers import WorkerInfo, WorkerState
from queue_manager.store.scripts import ScriptRunner


class WorkerStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._keys = runner.keys

    async def register(
        self, worker_id: WorkerId, caps: Capabilities, info: dict[str, JsonValue]
    ) -> JobId | None:
        """(Re)register a worker; returns the job it held before, now requeued, if any."""
        models = "null" if caps.models is None else json.dumps(sorted(caps.models))
        res = await self._run(
            "register",
            worker_id,
            json.dumps(sorted(caps.node_types)),
            models,
            json.dumps(info),
        )
        return JobId(res[2]) if res[2] else None

    async def set_state(self, worker_id: WorkerId, state: str) -> JobId | None:
        """Drain ('draining'), resume ('online') or remove ('removed') a worker, or let it
        leave ('left': removed at its own word)."""
        res = await self._run("worker_state", worker_id, state)
        if res[0] == "unknown_worker":
            raise WorkerNotFound(worker_id)
        return JobId(res[1]) if res[1] else None

    async def wait_signals(self, worker_id: WorkerId, timeout: float) -> list[Signal]:
        """Block until the queue manager has something to tell this worker about a job it
        holds (`Signal`s, oldest first), or `timeout` seconds: then []."""
        key = self._keys.signals(worker_id)
        got = await self._redis.blpop([key], timeout=timeout)
        if got is None:
            return []
        items = [cast("list[str]", got)[1]]
        items += cast("list[str]", await self._redis.lpop(key, 100) or [])
        return [s for s in map(Signal.parse, items) if s is not None]

    async def get(self, worker_id: WorkerId) -> WorkerInfo:
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.worker(worker_id)))
        if not fields:
            raise WorkerNotFound(worker_id)
        return worker_from_fields(fields)

    async def all(self) -> list[WorkerInfo]:
        ids = cast("list[WorkerId]", await self._redis.zrange(self._keys.workers, 0, -1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for wid in ids:
                pipe.hgetall(self._keys.worker(wid))
            rows = await pipe.execute()
        return [worker_from_fields(f) for f in rows if f]

    async def gaps(
        self, req: Requirements, workers: Iterable[WorkerInfo]
    ) -> dict[WorkerId, Requirements]:
        """What each given worker lacks to run `req` (empty sets: it can run it)."""
        nodes, models = sorted(req.node_types), sorted(req.models)
        chosen = list(workers)
        checks: list[tuple[WorkerId, list[str]]] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for w in chosen:
                if nodes:
                    pipe.smismember(self._keys.worker_nodes(w.id), nodes)
                    checks.append((w.id, nodes))
                if models and w.reports_models:
                    pipe.smismember(self._keys.worker_models(w.id), models)
                    checks.append((w.id, models))
            replies = await pipe.execute() if checks else []
        lacking: dict[WorkerId, set[str]] = {w.id: set() for w in chosen}
        for (wid, names), flags in zip(checks, replies, strict=True):
            lacking[wid].update(n for n, ok in zip(names, flags, strict=True) if not ok)
        return {
            wid: Requirements(frozenset(gap & req.node_types), frozenset(gap & req.models))
            for wid, gap in lacking.items()
        }


def worker_from_fields(fields: dict[str, str]) -> WorkerInfo:
    return WorkerInfo(
        id=WorkerId(fields["id"]),
        state=WorkerState(fields["state"]),
        job=JobId(fields["job"]) if fields.get("job") else None,
        next=JobId(fields["next"]) if fields.get("next") else None,
        seen=float(fields["seen"]),
        joined=float(fields["joined"]),
        done=int(fields.get("done", 0)),
        failed=int(fields.get("failed", 0)),
        reports_models=fields.get("reports_models") == "1",
        info=json.loads(fields.get("info") or "{}"),
    )
