"""What `comfy-workshop status` asks Redis itself: its health (INFO, the fsync policy) and the
last backup's record (written by `comfy-workshop backup`, store/snapshot.py)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from queue_manager.core.backups import LAST_KEY
from queue_manager.core.operator_status import RedisHealth


async def redis_health(redis: Redis) -> RedisHealth:
    info = await redis.info()
    try:
        fsync: str | None = (await redis.config_get("appendfsync")).get("appendfsync")
    except RedisError:  # CONFIG renamed or refused (a managed Redis): not shown
        fsync = None
    return RedisHealth.from_info(info, fsync)


async def last_backup_record(redis: Redis, prefix: str) -> str | None:
    raw = await redis.get(prefix + LAST_KEY)
    return None if raw is None else str(raw)  # the connection decodes already
