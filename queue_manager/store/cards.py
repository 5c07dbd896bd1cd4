"""Login cards in Redis: one hash per card under the SHA-256 of its token (never the token), and
which card is each user's newest. Making, revoking and using a card are one Lua script each
(`lua/card_issue.lua`, `lua/card_redeem.lua`); see `core/cards.py` for the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from queue_manager.core.accounts import Account, AccountRecord, Role
from queue_manager.core.cards import Redeemed
from queue_manager.core.ids import UserId
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner

# A card's record is kept this long after it expires, so the dashboard can say "expired".
KEEP_SECONDS = 86400


@dataclass(frozen=True)
class NewCard:
    user: UserId
    digest: str  # '' revokes the user's card without making a new one
    card_id: str = ""


@dataclass(frozen=True)
class Redemption:
    outcome: Redeemed
    user: UserId | None = None
    record: AccountRecord | None = None  # OPENED: the account and the hash to open a session for


class CardStore:
    def __init__(self, scripts: ScriptRunner) -> None:
        self._scripts = scripts
        self._redis: Redis = scripts.redis
        self._keys: Keys = scripts.keys

    async def issue(self, cards: Sequence[NewCard], expires: float) -> UserId | None:
        """Make (or revoke) these cards, all or none; the first name that is no account, if
        any (then nothing changed)."""
        args = [part for c in cards for part in (c.user, c.digest, c.card_id)]
        missing = await self._scripts.run("card_issue", repr(expires), KEEP_SECONDS, *args)
        return UserId(missing[0]) if missing else None

    async def redeem(self, digest: str) -> Redemption:
        answer = await self._scripts.run("card_redeem", digest)
        outcome = Redeemed(answer[0])
        if outcome is not Redeemed.OPENED:
            return Redemption(outcome, UserId(answer[1]) if len(answer) > 1 else None)
        name, role, password_hash = answer[1], Role(answer[2]), answer[3]
        account = Account(UserId(name), role)
        return Redemption(outcome, account.name, AccountRecord(account, password_hash))

    async def newest(self, users: Sequence[UserId]) -> dict[UserId, dict[str, str]]:
        """Each user's newest card record (users without one are left out)."""
        if not users:
            return {}
        digests = cast("list[str | None]", await self._redis.hmget(self._keys.cards, users))
        found = [(u, d) for u, d in zip(users, digests, strict=True) if d]
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, digest in found:
                pipe.hgetall(self._keys.card(digest))
            records = cast("list[dict[str, str]]", await pipe.execute())
        return {user: record for (user, _), record in zip(found, records, strict=True) if record}
