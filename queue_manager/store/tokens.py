"""Worker tokens: created by an operator, shown once, stored only as a hash.

A token is `cwt.<worker id>.<secret>`; the secret has 256 bits, so a plain SHA-256 of it is
what we keep (a slow password hash buys nothing against a random secret of that size).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import cast

from redis.asyncio import Redis

from queue_manager.core.ids import WorkerId, is_name
from queue_manager.store.keys import Keys

_PREFIX = "cwt"


class TokenStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.worker_tokens

    async def create(self, worker_id: WorkerId) -> str:
        """A new token for this worker name (replacing any earlier one); returned only here."""
        if not is_name(worker_id):
            raise ValueError("worker names are lowercase letters, digits, '-' and '_'")
        secret = secrets.token_urlsafe(32)
        await self._redis.hset(self._key, worker_id, _digest(secret))
        return f"{_PREFIX}.{worker_id}.{secret}"

    async def install(self, worker_id: WorkerId, secret: str) -> str:
        """Accept a token whose secret the operator chose (CW_WORKER_TOKENS); returns it."""
        if not is_name(worker_id) or len(secret) < 16:
            raise ValueError("a worker name and a secret of at least 16 characters")
        await self._redis.hset(self._key, worker_id, _digest(secret))
        return f"{_PREFIX}.{worker_id}.{secret}"

    async def verify(self, token: str) -> WorkerId | None:
        prefix, _, rest = token.partition(".")
        worker, _, secret = rest.partition(".")
        if prefix != _PREFIX or not worker or not secret:
            return None
        stored = cast("str | None", await self._redis.hget(self._key, worker))
        if stored is None or not hmac.compare_digest(stored, _digest(secret)):
            return None
        return WorkerId(worker)

    async def revoke(self, worker_id: WorkerId) -> bool:
        return bool(await self._redis.hdel(self._key, worker_id))

    async def names(self) -> list[WorkerId]:
        return sorted(cast("list[WorkerId]", await self._redis.hkeys(self._key)))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
