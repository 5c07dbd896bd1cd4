"""One queue-manager process's world, built from the settings: the Redis connection, the queue
service, the accounts, the users' files and the dashboards' shared room view. The HTTP app
holds one for its lifespan; nothing else builds these."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from queue_manager.core.clock import Clock
from queue_manager.core.ids import WorkerId
from queue_manager.push.dispatcher import PushDispatcher
from queue_manager.service.accounts import Accounts, open_accounts
from queue_manager.service.cards import LoginCards, open_login_cards
from queue_manager.service.queue import STOP_TIMEOUT, QueueService
from queue_manager.service.room_feed import Encoder, RoomFeed
from queue_manager.service.setting_defaults import SettingDefaults, open_setting_defaults
from queue_manager.settings import Settings
from queue_manager.storage.files import FileStore
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.tokens import TokenStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workshop:
    queue: QueueService
    accounts: Accounts
    files: FileStore
    room_feed: RoomFeed
    tokens: TokenStore  # worker tokens, for operators (the worker API checks them via `queue`)
    cards: LoginCards  # login cards and their links
    setting_defaults: SettingDefaults  # participants' default ComfyUI settings


@asynccontextmanager
async def open_workshop(
    settings: Settings, encode: Encoder, clock: Clock = time.time
) -> AsyncIterator[Workshop]:
    """Connect, install the preset worker tokens, run the background loops and the push
    dispatcher; close on exit."""
    redis = connect(str(settings.redis_url))
    keys = Keys(settings.key_prefix)
    try:
        tokens = TokenStore(redis, keys)
        for name, secret in settings.preset_worker_tokens():
            await tokens.install(WorkerId(name), secret)
        files = FileStore(settings.data_dir)
        queue = QueueService(settings, redis, clock, files=files)
        room_feed = RoomFeed(queue, encode)
        async with queue.running():
            pushing = asyncio.create_task(PushDispatcher(queue, settings, clock).run())
            try:
                accounts = open_accounts(redis, settings, clock)
                cards = open_login_cards(redis, settings, clock)
                defaults = open_setting_defaults(redis, settings, clock)
                yield Workshop(queue, accounts, files, room_feed, tokens, cards, defaults)
            finally:
                pushing.cancel()
                await asyncio.wait({pushing}, timeout=STOP_TIMEOUT)
                if not pushing.done():
                    log.warning("the push dispatcher did not stop within %.0f s", STOP_TIMEOUT)
                await room_feed.close()
    finally:
        await redis.aclose()
