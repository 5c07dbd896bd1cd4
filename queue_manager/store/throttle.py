"""The counts of wrong passwords behind login throttling (`core/throttling.py` has the policy),
kept in Redis so that every queue-manager process sees the same ones; each check is one Lua
script (`lua/login_attempt.lua`, `lua/login_succeeded.lua`)."""

from __future__ import annotations

from queue_manager.core.ids import is_name
from queue_manager.core.throttling import LoginLimits
from queue_manager.store.scripts import ScriptRunner

# Every name that cannot be an account shares one count (they become part of key names).
_NOT_A_NAME = "?"


class LoginThrottle:
    def __init__(self, scripts: ScriptRunner, limits: LoginLimits) -> None:
        self._scripts = scripts
        self._limits = limits

    async def attempt(self, name: str, address: str) -> float:
        """0 to go ahead with the password check (counted as a failure until `succeeded`), or
        the seconds left to wait (nothing counted)."""
        lim = self._limits
        left = await self._scripts.run(
            "login_attempt",
            _key_part(name),
            address,
            lim.free,
            lim.address_free,
            lim.account_free,
            lim.backoff,
            lim.max_backoff,
            lim.window,
        )
        return float(left)

    async def succeeded(self, name: str, address: str) -> None:
        await self._scripts.run("login_succeeded", _key_part(name), address)


def _key_part(name: str) -> str:
    return name if is_name(name) else _NOT_A_NAME
