"""Reading what `comfy-workshop status` shows: the room through the dashboard's own use case,
Redis's health (INFO, CONFIG), the last backup's record, and the data folder's disk use.
Judging and showing it is `core.operator_status`'s."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from queue_manager.core.backups import LAST_KEY
from queue_manager.core.operator_status import PARTS, DiskUse, Reading, RedisHealth, parse_backup
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect

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
            health = await _redis_health(redis)
            raw = await redis.get(settings.key_prefix + LAST_KEY)
    except (RedisError, OSError, TimeoutError) as exc:
        return Reading(now, disk, unreachable=f"{type(exc).__name__}: {exc}")
    finally:
        await redis.aclose()
    try:
        backup = parse_backup(str(raw)) if raw is not None else None  # decoded already
    except ValueError as exc:
        return Reading(now, disk, None, room, health, backup_unreadable=str(exc))
    return Reading(now, disk, None, room, health, backup)


async def _redis_health(redis: Redis) -> RedisHealth:
    info = await redis.info()
    try:
        fsync: str | None = (await redis.config_get("appendfsync")).get("appendfsync")
    except RedisError:  # CONFIG renamed or refused (a managed Redis): not shown
        fsync = None
    return RedisHealth.from_info(info, fsync)


def disk_use(data_dir: Path) -> DiskUse:
    """Sizes of the participants' folders and the free space of the folder's filesystem.
    Blocking (it walks every file); links are not followed."""
    folder = str(data_dir.resolve())
    if not data_dir.is_dir():
        return DiskUse(folder, False, {}, 0, 0)
    usage = shutil.disk_usage(data_dir)
    parts = {name: _size(data_dir / name) for name in PARTS}
    return DiskUse(folder, True, parts, usage.free, usage.total)


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):  # links to folders are not followed
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while we walked
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
