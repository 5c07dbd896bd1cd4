"""Login throttling: wrong passwords (form and HTTP Basic) back off per account and address,
with 429 and Retry-After, checked before any argon2 work; other addresses, other accounts and
a room behind one NAT are not locked out. Time is a fake clock: nothing here waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.store import accounts as account_store
from tests.support.clock import FakeClock
from tests.support.settings import make_settings

PASSWORD = "the-right-password"
ROOM = "198.51.100.7"  # the workshop's Wi-Fi, as seen by the server
ELSEWHERE = "198.51.100.99"

# Small numbers so that tests read plainly: 3 free failures, then 10 s doubling to 60 s.
SMALL = {
    "login_free_failures": 3,
    "login_backoff_seconds": 10,
    "login_max_backoff_seconds": 60,
    "login_failure_window_seconds": 600,
}

AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def make_app(
    redis_server: RedisServer, prefix: str, tmp_path: Path, clock: FakeClock
) -> AppFactory:
    @asynccontextmanager
    async def build(users: int = 2, **overrides: Any) -> AsyncIterator[FastAPI]:
        settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data", **overrides)
        application = create_app(settings, clock=clock)
        async with application.router.lifespan_context(application):
            for n in range(1, users + 1):
                await application.state.accounts.add(f"user{n:03d}", Role.PARTICIPANT, PASSWORD)
            yield application

    return build


@pytest.fixture
async def app(make_app: AppFactory) -> AsyncIterator[FastAPI]:
    async with make_app(**SMALL) as application:
        yield application


def client(app: FastAPI, address: str = ROOM, **kw: Any) -> httpx.AsyncClient:
    """A client whose connection comes from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", **kw)


async def log_in(c: httpx.AsyncClient, name: str, password: str, **kw: Any) -> httpx.Response:
    return await c.post("/login", data={"username": name, "password": password}, **kw)


async def fail(c: httpx.AsyncClient, name: str, times: int, **kw: Any) -> None:
    for _ in range(times):
        assert (await log_in(c, name, "wrong-password", **kw)).status_code == 401


class CountingHasher:
    """The tests' cheap argon2, counting the verifications it is asked for; `cost` seconds
    each (in argon2's thread, as real argon2 takes tens of ms) when a test wants overlap."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.verified = 0
        self.cost = 0.0

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        self.verified += 1
        time.sleep(self.cost)
        return bool(self.inner.verify(stored, password))


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher(account_store._hasher)
    monkeypatch.setattr(account_store, "_hasher", counting)
    return counting


async def test_wrong_passwords_end_in_429_with_retry_after(app: FastAPI) -> None:
    async with client(app) as c:
        await fail(c, "user001", 3)
        refused = await log_in(c, "user001", "wrong-password")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert "set-cookie" not in refused.headers
    assert "10 seconds" in refused.text


async def test_the_right_password_waits_out_the_delay_and_a_success_clears_it(
    app: FastAPI, clock: FakeClock
) -> None:
    async with client(app) as c:
        await fail(c, "user001", 3)
        assert (await log_in(c, "user001", PASSWORD)).status_code == 429
        clock.advance(10)
        assert (await log_in(c, "user001", PASSWORD)).status_code == 303
        await fail(c, "user001", 3)  # the success started the count again


async def test_the_delay_doubles_with_each_further_failure_up_to_the_cap(
    app: FastAPI, clock: FakeClock
) -> None:
    delays = []
    async with client(app) as c:
        await fail(c, "user001", 3)
        for _ in range(5):
            refused = await log_in(c, "user001", "wrong-password")
            delays.append(int(refused.headers["retry-after"]))
            clock.advance(delays[-1])
            await fail(c, "user001", 1)
    assert delays == [10, 20, 40, 60, 60]


async def test_failures_from_one_address_do_not_block_the_account_from_another(
    app: FastAPI,
) -> None:
    async with client(app, ROOM) as attacker, client(app, ELSEWHERE) as owner:
        await fail(attacker, "user001", 3)
        assert (await log_in(attacker, "user001", PASSWORD)).status_code == 429
        assert (await log_in(owner, "user001", PASSWORD)).status_code == 303
        await fail(owner, "user001", 3)


async def test_failures_against_one_account_do_not_block_another(app: FastAPI) -> None:
    async with client(app) as c:
        await fail(c, "user001", 3)
        assert (await log_in(c, "user001", PASSWORD)).status_code == 429
        assert (await log_in(c, "user002", PASSWORD)).status_code == 303


async def test_http_basic_failures_count_and_are_refused_with_429(app: FastAPI) -> None:
    async with client(app) as c:
        for _ in range(3):
            assert (await c.get("/api/me", auth=("user001", "wrong-password"))).status_code == 401
        refused = await c.get("/api/me", auth=("user001", PASSWORD))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "10"
        assert (await log_in(c, "user001", PASSWORD)).status_code == 429  # the same count


async def test_a_storm_of_guesses_runs_no_argon2_once_blocked(
    app: FastAPI, hasher: CountingHasher
) -> None:
    async with client(app) as c:
        answers = await asyncio.gather(*(log_in(c, "user001", f"guess-{n}") for n in range(30)))
        assert sorted(a.status_code for a in answers) == [401] * 3 + [429] * 27
        assert hasher.verified == 3
        for _ in range(20):
            assert (await c.get("/api/me", auth=("user001", "guess"))).status_code == 429
    assert hasher.verified == 3


async def test_a_burst_of_right_basic_requests_is_never_refused_and_checked_once(
    app: FastAPI, hasher: CountingHasher
) -> None:
    hasher.cost = 0.05  # the burst arrives while the first check is still running
    async with client(app, auth=("user001", PASSWORD)) as script:
        answers = await asyncio.gather(*(script.get("/api/me") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert hasher.verified == 1


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(app: FastAPI) -> None:
    async with client(app, ROOM) as c:
        for n in range(3):
            spoofed = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"}
            await fail(c, "user001", 1, headers=spoofed)
        fresh = {"X-Forwarded-For": "203.0.113.200", "X-Real-IP": "203.0.113.200"}
        assert (await log_in(c, "user001", PASSWORD, headers=fresh)).status_code == 429


async def test_a_trusted_proxy_passes_on_the_client_address(app: FastAPI) -> None:
    async with client(app, "127.0.0.1") as nginx:
        attacker = {"X-Forwarded-For": f"1.2.3.4, {ROOM}", "X-Real-IP": ROOM}
        await fail(nginx, "user001", 3, headers=attacker)
        assert (await log_in(nginx, "user001", PASSWORD, headers=attacker)).status_code == 429
        owner = {"X-Forwarded-For": ELSEWHERE, "X-Real-IP": ELSEWHERE}
        assert (await log_in(nginx, "user001", PASSWORD, headers=owner)).status_code == 303


async def test_one_address_guessing_across_accounts_is_slowed(make_app: AppFactory) -> None:
    async with (
        make_app(users=6, **SMALL, login_address_free_failures=8) as app,
        client(app) as c,
        client(app, ELSEWHERE) as other,
    ):
        for n in range(1, 5):
            await fail(c, f"user{n:03d}", 2)
        refused = await log_in(c, "user005", PASSWORD)
        assert refused.status_code == 429
        assert (await log_in(other, "user005", PASSWORD)).status_code == 303


async def test_many_addresses_against_one_account_slow_it_but_never_lock_it(
    make_app: AppFactory, clock: FakeClock
) -> None:
    async with make_app(**SMALL, login_account_free_failures=4) as app:
        for n in range(4):
            async with client(app, f"203.0.113.{n}") as c:
                await fail(c, "user001", 1)
        async with client(app, ELSEWHERE) as owner:
            for _ in range(3):  # more failures from everywhere never lengthen the wait
                refused = await log_in(owner, "user001", PASSWORD)
                assert (refused.status_code, refused.headers["retry-after"]) == (429, "10")
                clock.advance(10)
                async with client(app, "203.0.113.50") as c:
                    await fail(c, "user001", 1)
            clock.advance(10)
            assert (await log_in(owner, "user001", PASSWORD)).status_code == 303


async def test_a_room_of_twenty_behind_one_address_mistyping_is_never_refused(
    make_app: AppFactory,
) -> None:
    async with make_app(users=20) as app, client(app, ROOM) as c:  # the default settings
        for n in range(1, 21):
            await fail(c, f"user{n:03d}", 2)
            assert (await log_in(c, f"user{n:03d}", PASSWORD)).status_code == 303
