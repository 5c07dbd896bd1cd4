"""The node catalogue of the room: the merged `object_info` of the known workers, cached.

Every queue-manager process keeps the merged catalogue in memory and rebuilds it only when a
worker uploads a new one or the set of workers changes. With no worker known, the catalogues
workers published before (kept in Redis) stand in, so prompts are validated from the first
second after a restart or while every GPU is away. Only before any GPU ever reported does the
page get the bundled catalogue (so it loads) without validating against it: such jobs are
checked when the first catalogue arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from queue_manager.comfy.bundled import bundled_object_info
from queue_manager.comfy.object_info import merge, upload_inputs
from queue_manager.core.ids import WorkerId
from queue_manager.core.workers import WorkerState
from queue_manager.store.catalog import CatalogStore

log = logging.getLogger(__name__)

_COUNTED = (WorkerState.ONLINE, WorkerState.OFFLINE, WorkerState.DRAINING)


@dataclass(frozen=True)
class CatalogView:
    object_info: dict[str, Any]
    from_workers: bool  # a GPU's (now or last known); False: the bundled one, never validated
    uploads: list[tuple[str, str, str, str]]


class Catalog:
    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self._key: tuple[int, tuple[WorkerId, ...]] | None = None
        self._view: CatalogView | None = None
        self._bundled: CatalogView | None = None
        self._lock = asyncio.Lock()

    async def publish(self, worker_id: WorkerId, object_info_json: str) -> None:
        await self._store.put(worker_id, object_info_json)

    async def known(self, worker_id: WorkerId) -> dict[str, Any]:
        """What `worker_id` last published, else ComfyUI's own catalogue (bundled)."""
        raw = await self._store.kept_of(worker_id)
        if raw is None:
            return (await self._fallback()).object_info
        info: dict[str, Any] = await asyncio.to_thread(json.loads, raw)
        return info

    async def current(self) -> CatalogView:
        version, states = await self._store.key()
        ids = tuple(sorted(w for w, state in states.items() if state in _COUNTED))
        key = (version, ids)
        if key == self._key and self._view is not None:
            return self._view
        async with self._lock:
            if key != self._key or self._view is None:
                self._view = await self._build(list(ids))
                self._key = key
            return self._view

    async def _build(self, ids: list[WorkerId]) -> CatalogView:
        raw = await self._store.get_many(ids)
        source = "worker(s)"
        if not raw:  # no worker known now: the catalogues they published before
            raw, source = await self._store.kept(), "kept catalogue(s), no worker known now"
        if not raw:
            return await self._fallback()
        catalogues = await asyncio.to_thread(lambda: [json.loads(r) for r in raw.values()])
        merged = await asyncio.to_thread(merge, catalogues)
        log.info("node catalogue rebuilt from %d %s: %d node types", len(raw), source, len(merged))
        return CatalogView(merged, True, upload_inputs(merged))

    async def _fallback(self) -> CatalogView:
        if self._bundled is None:
            info = await asyncio.to_thread(bundled_object_info)
            self._bundled = CatalogView(info, False, upload_inputs(info))
        return self._bundled
