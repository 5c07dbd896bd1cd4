"""Running an operator command's use cases against the running workshop: one way for every
`comfy-workshop` subcommand that changes the room (workflows, templates, ...)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from queue_manager.cli.target import workshop_settings
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect


def run_with_service(settings: Settings, work: Callable[[QueueService], Awaitable[int]]) -> int:
    """`work(service)` on the workshop of the data folder (its use cases only: no loops
    started); its exit code, or 130 after Ctrl-C (no traceback)."""
    try:
        return asyncio.run(_run(workshop_settings(settings), work))
    except KeyboardInterrupt:
        return 130


async def _run(settings: Settings, work: Callable[[QueueService], Awaitable[int]]) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    try:
        return await work(QueueService(settings, redis))
    finally:
        await redis.aclose()
