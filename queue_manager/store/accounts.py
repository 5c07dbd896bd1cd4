"""Accounts in Redis: a name, a role, and an argon2 hash of the password (argon2-cffi).

All accounts live in one hash (name -> JSON), so adding one is a single atomic HSETNX. Names
are user names as they appear in URLs (`/user001/`) and folders, so they follow the same rule
as every other name here (`ids.is_name`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis

from queue_manager.core.accounts import Account, AccountError, Role, check_name, check_password
from queue_manager.core.ids import UserId, is_name
from queue_manager.store.keys import Keys

_hasher = PasswordHasher()
# Verifying against this when the name is unknown keeps the answer time the same, so a login
# form cannot be used to find out which accounts exist.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


_CACHE_KEY = secrets.token_bytes(32)  # per process: the cache never holds a usable digest
_CACHE_SECONDS = 300.0
_CACHE_SIZE = 4096


def new_password() -> str:
    return secrets.token_urlsafe(12)


class AccountStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.accounts
        self._verified: dict[tuple[str, bytes, str], float] = {}

    async def add(self, name: str, role: Role, password: str) -> Account:
        check_name(name)
        check_password(password)
        record = json.dumps({"role": role.value, "hash": _hasher.hash(password)})
        if not await self._redis.hsetnx(self._key, name, record):
            raise AccountError(f"account {name} exists already")
        return Account(UserId(name), role)

    async def remove(self, name: str) -> None:
        if not await self._redis.hdel(self._key, name):
            raise AccountError(f"no account {name}")

    async def reset(self, name: str, password: str) -> None:
        check_password(password)
        account = await self.get(name)
        if account is None:
            raise AccountError(f"no account {name}")
        record = json.dumps({"role": account.role.value, "hash": _hasher.hash(password)})
        await self._redis.hset(self._key, name, record)

    async def get(self, name: str) -> Account | None:
        record = await self._record(name)
        return Account(UserId(name), Role(record["role"])) if record else None

    async def all(self) -> list[Account]:
        raw = cast("dict[str, str]", await self._redis.hgetall(self._key))
        return [Account(UserId(n), Role(json.loads(r)["role"])) for n, r in sorted(raw.items())]

    async def verify(self, name: str, password: str) -> Account | None:
        """The account if the password is right; None otherwise (whatever was wrong).

        Argon2 is deliberately slow (tens of ms of CPU): it runs in a thread, never on the
        event loop, and a success is remembered for a few minutes (keyed by a keyed hash of
        the password and the stored hash, so a reset or removal ends it at once). Scripts that
        send HTTP Basic on every request then pay for it once.
        """
        record = await self._record(name)
        stored = record["hash"] if record else _DUMMY
        key = (name, hmac.new(_CACHE_KEY, password.encode(), hashlib.sha256).digest(), stored)
        if record and self._verified.get(key, 0.0) > time.monotonic():
            return Account(UserId(name), Role(record["role"]))
        try:
            await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not record:
            return None
        if len(self._verified) > _CACHE_SIZE:
            self._verified.clear()
        self._verified[key] = time.monotonic() + _CACHE_SECONDS
        return Account(UserId(name), Role(record["role"]))

    async def _record(self, name: str) -> dict[str, str] | None:
        if not is_name(name):
            return None
        raw = cast("str | None", await self._redis.hget(self._key, name))
        return cast("dict[str, str]", json.loads(raw)) if raw else None
