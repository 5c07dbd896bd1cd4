"""The instructor's published workflows in Redis: one hash field per workflow (its JSON
record), the name of the one opened on a first visit, and who has had that first visit.

{p}workflows           hash: name -> JSON {format, graph, position, randomize_seed, version,
                       published_at, published_by}
{p}workflows:first     string: the name opened on a participant's first visit
{p}workflows:welcomed  set: participants whose first visit opened it already
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis

from queue_manager.core.workflows import PublishedWorkflow, WorkflowFormat
from queue_manager.store.keys import Keys


class WorkflowStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._all = keys.prefix + "workflows"
        self._first = keys.prefix + "workflows:first"
        self._welcomed = keys.prefix + "workflows:welcomed"

    async def all(self) -> list[PublishedWorkflow]:
        """Every published workflow, in the instructor's order."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._all)
            pipe.get(self._first)
            raw, first = cast(tuple[dict[str, str], str | None], tuple(await pipe.execute()))
        found = [_record(name, text, first) for name, text in raw.items()]
        return sorted(found, key=lambda w: (w.position, w.name.casefold()))

    async def get(self, name: str) -> PublishedWorkflow | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._all, name)
            pipe.get(self._first)
            text, first = await pipe.execute()
        return None if text is None else _record(name, text, first)

    async def put(self, workflow: PublishedWorkflow, *, first: bool) -> None:
        """Add or replace one; `first` also makes it the one a first visit opens."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._all, workflow.name, _encode(workflow))
            if first:
                pipe.set(self._first, workflow.name)
            await pipe.execute()

    async def put_all(self, workflows: list[PublishedWorkflow], first: str | None) -> None:
        """Replace the whole set in one step (a rename, a new order)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._all)
            if workflows:
                pipe.hset(self._all, mapping={w.name: _encode(w) for w in workflows})
            if first:
                pipe.set(self._first, first)
            else:
                pipe.delete(self._first)
            await pipe.execute()

    async def remove(self, name: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._all, name)
            pipe.get(self._first)
            removed, first = await pipe.execute()
        if first == name:
            await self._redis.delete(self._first)
        return bool(removed)

    async def set_first(self, name: str | None) -> None:
        if name is None:
            await self._redis.delete(self._first)
        else:
            await self._redis.set(self._first, name)

    async def welcomed(self, user: str) -> bool:
        return bool(await self._redis.sismember(self._welcomed, user))

    async def mark_welcomed(self, user: str) -> None:
        await self._redis.sadd(self._welcomed, user)

    async def forget_welcomes(self) -> None:
        """Everyone's next visit counts as a first one again (a room reset)."""
        await self._redis.delete(self._welcomed)


def _encode(w: PublishedWorkflow) -> str:
    return json.dumps(
        {
            "format": w.format.value,
            "graph": w.graph,
            "position": w.position,
            "randomize_seed": w.randomize_seed,
            "version": w.version,
            "published_at": w.published_at,
            "published_by": w.published_by,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _record(name: str, text: str, first: str | None) -> PublishedWorkflow:
    data: dict[str, Any] = json.loads(text)
    return PublishedWorkflow(
        name=name,
        format=WorkflowFormat(data["format"]),
        graph=data["graph"],
        position=int(data.get("position", 0)),
        first=name == first,
        randomize_seed=bool(data.get("randomize_seed", False)),
        version=int(data.get("version", 1)),
        published_at=float(data.get("published_at", 0.0)),
        published_by=str(data.get("published_by", "")),
    )
