"""The queue manager's settings for a test that talks to the private Redis."""

from __future__ import annotations

import pytest

from queue_manager.cli.redis_server import RedisServer
from queue_manager.settings import Settings
from tests.support.settings import make_settings


@pytest.fixture
def settings(redis_server: RedisServer, prefix: str) -> Settings:
    return make_settings(redis_server, prefix)
