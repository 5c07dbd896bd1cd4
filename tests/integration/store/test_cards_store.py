"""The login cards' Lua scripts on the real Redis: a card is used once however many ask at once,
issuing is all or nothing, a newer card revokes the older, and Redis never holds a token."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.core.cards import Redeemed, card_digest, new_card_token
from queue_manager.core.ids import UserId
from queue_manager.store.accounts import AccountStore
from queue_manager.store.cards import CardStore, NewCard
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner
from tests.support.clock import FakeClock

ALICE, BOB = UserId("user001"), UserId("user002")


async def store_with_accounts(runner: ScriptRunner, redis: Redis, keys: Keys) -> CardStore:
    accounts = AccountStore(redis, keys)
    for name in (ALICE, BOB):
        await accounts.add(name, Role.PARTICIPANT, "a-password")
    return CardStore(runner)


async def test_many_at_once_use_a_card_exactly_once(
    runner: ScriptRunner, redis: Redis, keys: Keys, clock: FakeClock, redis_server: RedisServer
) -> None:
    cards = await store_with_accounts(runner, redis, keys)
    token = new_card_token()
    assert await cards.issue([NewCard(ALICE, card_digest(token), "c1")], clock() + 60) is None
    clients = [connect(redis_server.url) for _ in range(20)]  # a connection each: truly parallel
    try:
        stores = [CardStore(ScriptRunner(c, keys, clock)) for c in clients]
        found = await asyncio.gather(*(s.redeem(card_digest(token)) for s in stores))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    outcomes = sorted(f.outcome for f in found)
    assert outcomes == [Redeemed.OPENED] + [Redeemed.USED] * 19
    opened = next(f for f in found if f.outcome is Redeemed.OPENED)
    assert opened.user == ALICE and opened.record is not None


async def test_issuing_for_an_unknown_name_changes_nothing(
    runner: ScriptRunner, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    cards = await store_with_accounts(runner, redis, keys)
    before = await redis.keys(f"{keys.prefix}*")
    token = new_card_token()
    batch = [NewCard(ALICE, card_digest(token), "c1"), NewCard(UserId("nosuchuser"), "d", "c2")]
    assert await cards.issue(batch, clock() + 60) == "nosuchuser"
    assert sorted(await redis.keys(f"{keys.prefix}*")) == sorted(before)
    assert (await cards.redeem(card_digest(token))).outcome is Redeemed.UNKNOWN


async def test_a_newer_card_revokes_the_older_and_redis_keeps_no_token(
    runner: ScriptRunner, redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    cards = await store_with_accounts(runner, redis, keys)
    old, new = new_card_token(), new_card_token()
    await cards.issue([NewCard(ALICE, card_digest(old), "c1")], clock() + 60)
    await cards.issue([NewCard(ALICE, card_digest(new), "c2")], clock() + 60)
    dump = repr([await redis.dump(k) for k in await redis.keys(f"{keys.prefix}*")])
    assert old not in dump and new not in dump
    assert (await cards.redeem(card_digest(old))).outcome is Redeemed.REVOKED
    clock.advance(60)
    assert (await cards.redeem(card_digest(new))).outcome is Redeemed.EXPIRED
    newest = await cards.newest([ALICE, BOB])
    assert list(newest) == [ALICE] and newest[ALICE]["card"] == "c2"
    assert await redis.ttl(keys.card(card_digest(new))) > 0  # forgotten a day after expiry
