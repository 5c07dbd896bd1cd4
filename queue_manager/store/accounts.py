"""Accounts in Redis: a name, a role, an argon2 hash of the password (argon2-cffi), and the
account's live login sessions.

All accounts live in one hash (name -> JSON), so adding one is a single atomic HSETNX and a
request reads its caller's whole record (role, password hash, sessions) in one HGET. Every
other change rewrites a record in one Lua script (`lua/session_open.lua`, `sessions_end.lua`,
`account_update.lua`, `account_remove.lua`), which also announces ended sessions on the event
stream. Names are user names as they appear in URLs (`/user001/`) and folders, so they follow
the same rule as every other name here (`ids.is_name`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import time
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from queue_manager.core.accounts import (
    MOST_SESSIONS,
    Account,
    AccountError,
    AccountRecord,
    Role,
    SignOutReason,
    check_name,
    check_password,
)
from queue_manager.core.clock import Clock
from queue_manager.core.ids import SessionId, UserId, is_name
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner

__all__ = ["Account", "AccountError", "AccountStore", "Role", "new_password"]

_hasher = PasswordHasher()
# Verifying against this when the name is unknown keeps the answer time the same, so a login
# form cannot be used to find out which accounts exist.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


# Argon2 checks at once: each holds its 64 MiB for the check, and they are CPU-bound, so more
# of them than cores run no faster together, only bigger (20 participants logging in at the
# same moment took the process from 120 to 505 MiB through the default thread pool).
HASHING_AT_ONCE = max(1, os.cpu_count() or 1)

_CACHE_KEY = secrets.token_bytes(32)  # per process: the cache never holds a usable digest
_CACHE_SECONDS = 300.0
_CACHE_SIZE = 4096


def new_password() -> str:
    return secrets.token_urlsafe(12)


class AccountStore:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock = time.time) -> None:
        self._redis = redis
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)
        self._key = keys.accounts
        self._scripts = ScriptRunner(redis, keys, clock)
        self._verified: dict[tuple[str, bytes, str], float] = {}

    async def add(self, name: str, role: Role, password: str) -> Account:
        check_name(name)
        check_password(password)
        record = json.dumps({"role": role.value, "hash": await self._hash(password)})
        if not await self._redis.hsetnx(self._key, name, record):
            raise AccountError(f"account {name} exists already")
        return Account(UserId(name), role)

    async def remove(self, name: str) -> None:
        """Forget the account; its sessions end with it (its sockets are told)."""
        if not await self._scripts.run("account_remove", name, SignOutReason.REMOVED):
            raise AccountError(f"no account {name}")

    async def reset(self, name: str, password: str) -> None:
        """A new password; every session of the account ends."""
        check_password(password)
        await self._update(name, SignOutReason.PASSWORD, hash=await self._hash(password))

    async def _hash(self, password: str) -> str:
        """Argon2 of a new password, in a thread (it takes tens of ms of CPU), a few at once."""
        async with self._hashing:
            return await asyncio.to_thread(_hasher.hash, password)

    async def set_role(self, name: str, role: Role) -> None:
        """A new role; every session of the account ends (it was opened for the old one)."""
        await self._update(name, SignOutReason.ROLE, role=role.value)

    async def get(self, name: str) -> Account | None:
        record = await self.record(name)
        return record.account if record else None

    async def all(self) -> list[Account]:
        raw = cast("dict[str, str]", await self._redis.hgetall(self._key))
        return [Account(UserId(n), Role(json.loads(r)["role"])) for n, r in sorted(raw.items())]

    async def record(self, name: str) -> AccountRecord | None:
        """The account, its password hash and its sessions: one read."""
        if not is_name(name):
            return None
        raw = cast("str | None", await self._redis.hget(self._key, name))
        if not raw:
            return None
        data = json.loads(raw)
        sessions = data.get("sessions") or {}
        return AccountRecord(
            Account(UserId(name), Role(data["role"])),
            str(data["hash"]),
            {str(sid): float(expiry) for sid, expiry in sessions.items()},
        )

    def remembered(self, record: AccountRecord, password: str) -> bool:
        """Whether this password was found right for this very hash a few minutes ago.

        The cache is keyed by a keyed hash of the password and by the stored hash, so a reset
        or removal ends it at once; it saves scripts that send HTTP Basic on every request
        from paying argon2 each time.
        """
        key = fingerprint(record.account.name, record, password)
        return self._verified.get(key, 0.0) > time.monotonic()

    async def password_matches(self, record: AccountRecord | None, password: str) -> bool:
        """Argon2 (deliberately slow: tens of ms of CPU), in a thread, never on the event loop;
        against a dummy hash when there is no account, so the answer takes as long."""
        stored = record.password_hash if record else _DUMMY
        try:
            async with self._hashing:
                await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False
        if record is None:
            return False
        if len(self._verified) > _CACHE_SIZE:
            self._verified.clear()
        key = fingerprint(record.account.name, record, password)
        self._verified[key] = time.monotonic() + _CACHE_SECONDS
        return True

    async def verify(self, name: str, password: str) -> Account | None:
        """The account if the password is right; None otherwise (whatever was wrong). Not
        throttled: logins go through `service.accounts.Accounts`, which is."""
        record = await self.record(name)
        if record is not None and self.remembered(record, password):
            return record.account
        matches = await self.password_matches(record, password)
        return record.account if record is not None and matches else None

    async def open_session(
        self, record: AccountRecord, session: SessionId, expires_at: float
    ) -> bool:
        """Open a session for the password `record` was checked against (False if that
        password or the account is gone meanwhile)."""
        opened = await self._scripts.run(
            "session_open",
            record.account.name,
            record.password_hash,
            session,
            repr(expires_at),
            MOST_SESSIONS,
        )
        return bool(opened)

    async def end_sessions(
        self, name: str, reason: SignOutReason, session: SessionId | None = None
    ) -> bool:
        """End one session of the account, or all of them; False when there is no account."""
        ended = await self._scripts.run("sessions_end", reason, name, session or "")
        return ended is not None

    async def end_room_sessions(self, reason: SignOutReason) -> list[UserId]:
        """End every participant's sessions (instructors keep theirs); who had any."""
        ended = await self._scripts.run("sessions_end", reason, "", "")
        return [UserId(name) for name in ended]

    async def _update(self, name: str, reason: SignOutReason, **fields: str) -> None:
        pairs = [item for field in fields.items() for item in field]
        if not await self._scripts.run("account_update", name, reason, *pairs):
            raise AccountError(f"no account {name}")


def fingerprint(name: str, record: AccountRecord | None, password: str) -> tuple[str, bytes, str]:
    """Names one password check (name, a keyed hash of the password, the stored hash) without
    holding anything that could be used as the password."""
    digest = hmac.new(_CACHE_KEY, password.encode(), hashlib.sha256).digest()
    return (name, digest, record.password_hash if record else "")
