"""Reading what `comfy-workshop status` shows: the room through the dashboard's own use case,
Redis's health and the last backup's record (store/server_health.py). Judging and showing it
is `core.operator_status`'s; the disk use is `storage.disk_use`'s."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from queue_manager.core.operator_status import DiskUse, Reading, parse_backup
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from queue_manager.store.server_health import last_backup_record, redis_health

# The whole read; a workshop's Redis answers in milliseconds.
READ_TIMEOUT = 10.0


async def read_workshop(settings: Settings, disk: DiskUse, now: float) -> Reading:
    """The room, Redis's health and the last backup (`settings` aimed at the running
    workshop: cli.target); a Reading that says Redis is unreachable if it stops answering."""
    redis = connect(str(settings.redis_url), retries=0)
    service = QueueService(settings, redis)  # its use cases only: no loops started
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            room = await service.room_state(now)
            health = await redis_health(redis)
            raw = await last_backup_record(redis, settings.key_prefix)
    except (RedisError, OSError, TimeoutError) as exc:
        return Reading(now, disk, unreachable=f"{type(exc).__name__}: {exc}")
    finally:
        await redis.aclose()
    try:
        backup = parse_backup(raw) if raw is not None else None
    except ValueError as exc:
        return Reading(now, disk, None, room, health, backup_unreadable=str(exc))
    return Reading(now, disk, None, room, health, backup)
