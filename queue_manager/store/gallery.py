"""The instructor's gallery in Redis: pages of completed jobs with outputs (`lua/gallery.lua`;
`finish.lua` adds each one as it completes), and the output shown to everyone now (kept by
`announce.lua` with its announcement)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from pydantic import JsonValue

from queue_manager.core.errors import GalleryInvalid
from queue_manager.core.gallery import Showcase
from queue_manager.core.ids import JobId, UserId
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner


@dataclass(frozen=True)
class GalleryRow:
    job: JobId
    user: UserId
    finished_at: float
    outputs: list[dict[str, JsonValue]]
    prompt: dict[str, JsonValue]


class GalleryStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._showcase = runner.keys.prefix + Keys.SHOWCASE

    async def page(
        self, user: UserId | None, after: JobId | None, limit: int
    ) -> tuple[list[GalleryRow], JobId | None]:
        """Up to `limit` jobs after `after` (newest first), and the cursor of the next page."""
        res = await self._run("gallery", user or "", after or "", limit)
        if res[0] == "unknown":
            raise GalleryInvalid(f"{after} is not in the gallery (reload it from the start)")
        _, nxt, rows = res
        return [_row(r) for r in rows], JobId(nxt) if nxt else None

    async def showcase(self) -> Showcase | None:
        raw = cast("str | None", await self._redis.get(self._showcase))
        return Showcase.model_validate_json(raw) if raw else None


def _row(raw: list[str]) -> GalleryRow:
    job, user, finished_at, outputs, prompt = raw
    return GalleryRow(
        job=JobId(job),
        user=UserId(user),
        finished_at=float(finished_at),
        outputs=json.loads(outputs) or [],
        prompt=json.loads(prompt) or {},
    )
