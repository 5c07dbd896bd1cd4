"""Room-wide controls and per-user overrides, changed live by the instructor."""

from __future__ import annotations

from typing import cast

from queue_manager.core.control import RoomControl, UserControl
from queue_manager.core.ids import UserId
from queue_manager.core.scheduling import Mode
from queue_manager.core.templates import DEFAULT_MODE as DEFAULT_TEMPLATES_MODE
from queue_manager.core.templates import TemplatesMode
from queue_manager.store.scripts import ScriptRunner


class ControlStore:
    def __init__(self, runner: ScriptRunner) -> None:
        self._run = runner.run
        self._redis = runner.redis
        self._keys = runner.keys

    async def initialize(
        self, defaults: RoomControl, *, events_maxlen: int, lease_seconds: float
    ) -> None:
        """Write the settings' defaults where Redis has no value yet.

        What the instructor changes live (pause, per-user limits) survives a restart of the
        queue manager; the scheduling mode, attempt limit, lease length and event stream cap
        follow the settings at every start.
        """
        live = _fields(defaults)
        fixed = {name: live.pop(name) for name in ("mode", "max_attempts")}
        fixed["events_maxlen"] = str(events_maxlen)
        fixed["lease_seconds"] = repr(lease_seconds)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, value in live.items():
                pipe.hsetnx(self._keys.control, name, value)
            for name, value in fixed.items():
                pipe.hset(self._keys.control, name, value)
            await pipe.execute()

    async def room(self) -> RoomControl:
        f = cast("dict[str, str]", await self._redis.hgetall(self._keys.control))
        return room_control_from_fields(f)

    async def user(self, user: UserId) -> UserControl:
        f = cast("dict[str, str]", await self._redis.hgetall(self._keys.user_ctl(user)))
        return UserControl(
            paused=f.get("paused") == "1",
            max_queued=int(f["max_queued"]) if "max_queued" in f else None,
            max_running=int(f["max_running"]) if "max_running" in f else None,
        )

    async def pause(self) -> None:
        await self._run("configure", "", "paused", "1")

    async def resume(self) -> None:
        await self._run("configure", "", "paused", "0")

    async def set_broadcast(self, message: str) -> None:
        """Show `message` on every participant's page until replaced; '' clears it."""
        await self._run("configure", "", "broadcast", message)

    async def set_templates_mode(self, mode: TemplatesMode) -> None:
        """What the Templates browser shows of the official templates (kept over restarts)."""
        await self._run("configure", "", "templates", mode.value)

    async def set_mode(self, mode: Mode) -> None:
        await self._run("configure", "", "mode", mode.value)

    async def set_room_limits(
        self, *, max_queued: int | None = None, max_running: int | None = None
    ) -> None:
        pairs = _pairs(max_queued=max_queued, max_running=max_running)
        if pairs:
            await self._run("configure", "", *pairs)

    async def set_user_limits(
        self, user: UserId, max_queued: int | None, max_running: int | None
    ) -> None:
        """Both of a user's limits in one step; None returns that one to the room default."""
        pairs = [
            "max_queued",
            "" if max_queued is None else str(max_queued),
            "max_running",
            "" if max_running is None else str(max_running),
        ]
        await self._run("configure", user, *pairs)

    async def set_user_paused(self, user: UserId, paused: bool) -> None:
        """A paused user's jobs stay queued, claimed by nobody, until resumed."""
        await self._run("configure", user, "paused", "1" if paused else "0")


def room_control_from_fields(f: dict[str, str]) -> RoomControl:
    return RoomControl(
        paused=f.get("paused") == "1",
        mode=Mode(f.get("mode", "fair")),
        max_queued=int(f.get("max_queued", -1)),
        max_running=int(f.get("max_running", -1)),
        max_attempts=int(f.get("max_attempts", 3)),
        broadcast=f.get("broadcast", ""),
        templates=_templates_mode(f.get("templates")),
    )


def _templates_mode(value: str | None) -> TemplatesMode:
    try:
        return TemplatesMode(value or DEFAULT_TEMPLATES_MODE)
    except ValueError:  # written by a later version: the default until set again
        return DEFAULT_TEMPLATES_MODE


def _pairs(**values: int | None) -> list[str]:
    return [x for name, v in values.items() if v is not None for x in (name, str(v))]


def _fields(c: RoomControl) -> dict[str, str]:
    return {
        "paused": "1" if c.paused else "0",
        "mode": c.mode.value,
        "max_queued": str(c.max_queued),
        "max_running": str(c.max_running),
        "max_attempts": str(c.max_attempts),
    }
