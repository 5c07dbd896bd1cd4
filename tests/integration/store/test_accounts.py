"""Accounts: argon2-hashed passwords in Redis."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from queue_manager.store import accounts as store_accounts
from queue_manager.store.accounts import Account, AccountError, AccountStore, Role
from queue_manager.store.keys import Keys
from tests.support.waiting import until


async def test_an_account_verifies_only_with_its_password(accounts: AccountStore) -> None:
    await accounts.add("user001", Role.PARTICIPANT, "correct horse")
    assert await accounts.verify("user001", "correct horse") == Account("user001", Role.PARTICIPANT)  # type: ignore[arg-type]
    assert await accounts.verify("user001", "wrong horse!") is None
    assert await accounts.verify("nobody", "correct horse") is None
    assert await accounts.verify("../etc", "correct horse") is None


async def test_passwords_are_stored_only_as_argon2_hashes(
    accounts: AccountStore, redis: Redis, prefix: str
) -> None:
    await accounts.add("teacher", Role.INSTRUCTOR, "s3cret-pass")
    raw = await redis.hget(Keys(prefix).accounts, "teacher")
    assert "s3cret-pass" not in str(raw)
    assert "$argon2id$" in str(raw)


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("User 1", "long enough", "names are"),
        ("", "long enough", "names are"),
        ("user002", "short", "at least 8"),
    ],
)
async def test_bad_accounts_are_refused(
    accounts: AccountStore, name: str, password: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        await accounts.add(name, Role.PARTICIPANT, password)


async def test_an_account_is_added_once_reset_and_removed(accounts: AccountStore) -> None:
    await accounts.add("user001", Role.PARTICIPANT, "first password")
    with pytest.raises(AccountError, match="exists already"):
        await accounts.add("user001", Role.INSTRUCTOR, "other password")
    await accounts.reset("user001", "second password")
    assert await accounts.verify("user001", "first password") is None
    assert await accounts.verify("user001", "second password") is not None
    assert [a.name for a in await accounts.all()] == ["user001"]
    await accounts.remove("user001")
    assert await accounts.all() == []
    with pytest.raises(AccountError):
        await accounts.reset("user001", "third password")


class GatedHasher:
    """Stands in for argon2: each check waits until the test lets one through, counting how
    many are inside at once."""

    def __init__(self, real: PasswordHasher) -> None:
        self.real = real
        self.gate = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.active = self.peak = self.done = 0

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            self.gate.acquire(timeout=30)
            return bool(self.real.verify(stored, password))
        finally:
            with self.lock:
                self.active -= 1
                self.done += 1


async def test_a_crowd_of_logins_runs_only_a_few_argon2_checks_at_once(
    accounts: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check holds argon2's memory (64 MiB in production): twenty participants logging in
    at the same moment must not hold twenty of them (the thread pool alone would allow
    cores + 4)."""
    await accounts.add("user001", Role.PARTICIPANT, "correct horse")
    gated = GatedHasher(store_accounts._hasher)
    monkeypatch.setattr(store_accounts, "_hasher", gated)
    crowd = 12
    checks = [
        asyncio.create_task(accounts.verify("user001", f"guess number {i}")) for i in range(crowd)
    ]
    limit = store_accounts.HASHING_AT_ONCE
    for released in range(1, crowd + 1):  # one at a time: every waiting check gets its chance
        inside = min(limit, crowd - released + 1)
        await until(lambda inside=inside: gated.active == inside)  # type: ignore[misc]
        gated.gate.release()
        await until(lambda released=released: gated.done == released)  # type: ignore[misc]
    assert await asyncio.gather(*checks) == [None] * crowd
    assert gated.peak == store_accounts.HASHING_AT_ONCE
