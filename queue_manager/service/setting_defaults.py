"""The workshop's default settings for participants: what the instructor lists, sets and unsets
(`comfy-workshop defaults`, `/admin/api/defaults`), and each participant's settings as their
page reads them (`core/setting_defaults.py` has the rules).

A workshop gets the built-in defaults once, on the first read after its Redis is new; after
that only the instructor changes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from redis.asyncio import Redis

from queue_manager.core import setting_defaults as rules
from queue_manager.core.clock import Clock
from queue_manager.core.ids import UserId
from queue_manager.settings import Settings
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner
from queue_manager.store.setting_defaults import SettingDefaultStore

log = logging.getLogger(__name__)


class SettingDefaults:
    def __init__(self, store: SettingDefaultStore) -> None:
        self._store = store
        self._seeded = False  # in this process: one script call, then none

    async def all(self) -> dict[str, object]:
        """Every default, by id."""
        if not self._seeded:
            built_in = {k: rules.encode_value(k, v) for k, v in rules.BUILT_IN.items()}
            if await self._store.seed(built_in):
                log.info("default settings: the built-in ones written (%d)", len(built_in))
            self._seeded = True
        return rules.decoded(await self._store.all())

    async def for_participant(self, own: Mapping[str, object]) -> dict[str, object]:
        """A participant's saved settings with the defaults beneath them."""
        return rules.with_defaults(own, await self.all())

    async def set(self, setting_id: str, value: object, by: UserId) -> None:
        text = rules.encode_value(rules.check_id(setting_id), value)
        await self.all()  # seeded first, or a later seeding would look like a change
        await self._store.put(setting_id, text)
        log.info("default setting set id=%s by=%s", setting_id, by)

    async def unset(self, setting_id: str, by: UserId) -> bool:
        """False if there was no such default."""
        await self.all()
        removed = await self._store.remove(rules.check_id(setting_id))
        if removed:
            log.info("default setting unset id=%s by=%s", setting_id, by)
        return removed

    async def replace(self, defaults: Mapping[str, object], by: UserId) -> None:
        """All of them at once (the dashboard's editor); nothing changes if one is wrong."""
        checked = rules.checked(defaults)
        await self.all()
        await self._store.replace(checked)
        log.info("default settings replaced count=%d by=%s", len(checked), by)


def open_setting_defaults(
    redis: Redis, settings: Settings, clock: Clock = time.time
) -> SettingDefaults:
    runner = ScriptRunner(redis, Keys(settings.key_prefix), clock)
    return SettingDefaults(SettingDefaultStore(runner))
