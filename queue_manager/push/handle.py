"""A slot's hold on the job it claimed: the workers' use cases, bound to that worker and
attempt (what the agent's manager client is to a pull worker, in process).

Every call raises LeaseLost once the attempt is no longer the slot's (cancelled, requeued,
the endpoint removed): the run stops there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from queue_manager.comfy.remote import FileInput, OutputRef
from queue_manager.contract.worker_api import OutputUpload, StoredOutput
from queue_manager.core.events import EventType
from queue_manager.core.ids import WorkerId
from queue_manager.core.jobs import JobError
from queue_manager.core.paths import Kind
from queue_manager.core.queueing import Claimed
from queue_manager.service.queue import STORE_OUTAGES, QueueService
from queue_manager.service.tasks import reraise_if_cancelled


@dataclass
class JobHandle:
    service: QueueService
    worker: WorkerId
    job: Claimed
    prompt: dict[str, Any] = field(init=False)
    extra_data: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.prompt = json.loads(self.job.prompt_json)
        self.extra_data = json.loads(self.job.extra_data_json or "{}")

    @property
    def attempt(self) -> int:
        return self.job.attempts

    async def tell(self, kind: EventType, data: dict[str, JsonValue]) -> None:
        """A phase or progress: a Redis blip loses it, never the run."""
        try:
            await self.service.report(self.job.id, self.worker, self.attempt, kind, data)
        except STORE_OUTAGES:
            reraise_if_cancelled()

    async def preview(self, image: bytes, mime: str) -> None:
        try:
            await self.service.set_preview(self.job.id, self.worker, self.attempt, image, mime)
        except STORE_OUTAGES:
            reraise_if_cancelled()

    async def heartbeat(self) -> None:
        await self.service.heartbeat(self.worker, self.job.id, self.attempt)

    async def input_file(self, ref: FileInput) -> Path:
        """A file the prompt names (an upload, or an earlier output), in the user's folder."""
        kind: Kind = "outputs" if ref.kind == "outputs" else "inputs"
        return await self.service.input_file(self.job.id, self.worker, self.attempt, kind, ref.name)

    async def store(
        self, ref: OutputRef, subfolder: str, body: AsyncIterable[bytes]
    ) -> StoredOutput:
        upload = OutputUpload(
            attempt=self.attempt,
            filename=ref.filename,
            subfolder=subfolder,
            type="temp" if ref.type == "temp" else "output",
            node_id=ref.node_id,
            media=ref.media,
        )
        return await self.service.store_output(self.job.id, self.worker, upload, body)

    async def complete(self) -> None:
        await self.service.complete(self.job.id, self.worker, self.attempt)

    async def fail(self, error: dict[str, Any]) -> None:
        await self.service.fail(
            self.job.id, self.worker, self.attempt, JobError.model_validate(error)
        )

    async def give_back(self) -> bool:
        """Back to the queue where it was, its attempt not counted: it never started (False:
        the queue saw it start)."""
        return await self.service.give_back(self.job.id, self.worker, self.attempt)

    async def release(self, why: str) -> None:
        await self.service.release(self.job.id, self.worker, self.attempt, why)
