"""The queue manager's settings for a test: its private Redis, its own key prefix."""

from __future__ import annotations

from queue_manager.cli.redis_server import RedisServer
from queue_manager.settings import Settings


def make_settings(redis_server: RedisServer, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_server.url,
        "key_prefix": prefix,
        "max_queued_per_user": 100,
        "max_running_per_user": -1,
    }
    values.update(overrides)
    return Settings.model_validate(values)
