"""Accounts: argon2-hashed passwords in Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from queue_manager.store.accounts import Account, AccountError, AccountStore, Role
from queue_manager.store.keys import Keys


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
