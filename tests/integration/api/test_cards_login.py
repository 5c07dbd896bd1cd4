"""A login card's link (`GET /login/card/{token}`): it logs its own account in, once, until it
expires, whatever the browser carried before; anything else (used, expired, revoked, stale,
tampered, unknown) is a clear 410 page that opens no session and changes nothing. Real Redis,
the app in process (and behind a real uvicorn for concurrent requests); time is a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.store.accounts import AccountStore
from tests.support.clock import FakeClock
from tests.support.participants import ACCOUNTS, PASSWORD, client_for
from tests.support.servers import serve
from tests.support.settings import make_settings

COOKIE = "cw_session"
REFUSED = "already used or has expired"
ROOM = "198.51.100.7"


@pytest.fixture
async def app(
    redis_server: RedisServer, prefix: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        redis_server, prefix, data_dir=tmp_path / "data", login_free_failures=3,
        login_backoff_seconds=10, login_max_backoff_seconds=60,
    )  # fmt: skip
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        for name, role in ACCOUNTS.items():
            await application.state.accounts.add(name, role, PASSWORD)
        yield application


def browser(app: FastAPI, address: str = ROOM) -> httpx.AsyncClient:
    """A browser without credentials, connecting from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def card(app: FastAPI, user: str, expires: str = "12h") -> str:
    """A new card's link path for `user`, made by the instructor."""
    async with client_for(app, "teacher") as teacher:
        made = await teacher.post(f"/admin/api/cards/{user}", json={"expires": expires})
    assert made.status_code == 200, made.text
    return urlsplit(made.json()["link"]).path


async def follow(app: FastAPI, path: str, **kw: Any) -> httpx.Response:
    async with browser(app, **kw) as b:
        return await b.get(path)


async def sessions(app: FastAPI, user: str) -> int:
    store: AccountStore = app.state.cards._accounts
    record = await store.record(user)
    assert record is not None
    return len(record.sessions)


def refused(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 410 and REFUSED in answer.text and "set-cookie" not in answer.headers
    )


async def test_a_link_logs_its_participant_in_once_and_only_once(app: FastAPI) -> None:
    link = await card(app, "user001")
    async with browser(app) as b:
        first = await b.get(link)
        assert first.status_code == 303
        assert first.headers["location"] == "/user001/"
        assert first.headers["cache-control"] == "no-store"
        assert (await b.get("/api/me")).json() == {"name": "user001", "role": "participant"}
        second = await b.get(link)
    assert refused(second)
    assert second.headers["content-type"].startswith("text/html")
    assert "ask the instructor for a new card" in second.text
    assert await sessions(app, "user001") == 1


async def test_concurrent_uses_open_exactly_one_session(app: FastAPI) -> None:
    """Three requests at once over real connections, five times over; each round from an
    address of its own (named by the trusted proxy in front: loopback), so that the refusals
    of one round, which count as failed logins, do not throttle the next."""
    async with serve(app) as base:
        for round_ in range(1, 6):
            link = await card(app, "user001")
            address = {"X-Forwarded-For": f"198.51.100.{round_}"}
            async with httpx.AsyncClient(base_url=base, timeout=10, headers=address) as c:
                answers = await asyncio.gather(*(c.get(link) for _ in range(3)))
            assert sorted(a.status_code for a in answers) == [303, 410, 410]
            assert await sessions(app, "user001") == round_


async def test_a_link_expires(app: FastAPI, clock: FakeClock) -> None:
    early, late = await card(app, "user001", "2h"), await card(app, "user002", "2h")
    clock.advance(2 * 3600 - 1)
    assert (await follow(app, early)).status_code == 303
    clock.advance(1)
    assert refused(await follow(app, late))
    assert await sessions(app, "user002") == 0


async def test_a_link_logs_in_its_own_account_whatever_cookie_the_browser_carries(
    app: FastAPI,
) -> None:
    link = await card(app, "user001")
    async with browser(app) as b:
        teacher = await b.post("/login", data={"username": "teacher", "password": PASSWORD})
        assert teacher.status_code == 303
        assert (await b.get("/api/me")).json()["name"] == "teacher"
        answer = await b.get(link)
        assert answer.headers["location"] == "/user001/"
        assert (await b.get("/api/me")).json() == {"name": "user001", "role": "participant"}
        assert (await b.get("/admin/api/state")).status_code == 403


async def test_the_instructors_card_lands_on_the_dashboard(app: FastAPI) -> None:
    answer = await follow(app, await card(app, "teacher"))
    assert answer.headers["location"] == "/admin/"


def tampered(token: str, other: str) -> list[str]:
    flip = "A" if token[5] != "A" else "B"
    return [
        token[:5] + flip + token[6:],  # one character changed
        token[:-1],  # truncated
        token + "A",  # extended
        other[:22] + token[22:],  # another user's card's beginning
        token[:22] + other[22:],  # another user's card's end
        token.upper() if token.upper() != token else token.lower(),
        "",
        "..%2F..%2Fadmin%2F",
    ]


async def test_a_tampered_link_is_refused_and_changes_nothing(app: FastAPI) -> None:
    mine, theirs = await card(app, "user001"), await card(app, "user002")
    prefix = "/login/card/"
    variants = tampered(mine.removeprefix(prefix), theirs.removeprefix(prefix))
    for n, bad in enumerate(variants):  # each from an address of its own: none is throttled
        answer = await follow(app, prefix + bad, address=f"203.0.113.{n}")
        assert "set-cookie" not in answer.headers, bad
        # a token refused as such, or a path that is no token sent to the login page
        assert refused(answer) or answer.headers["location"].startswith("/login?"), bad
    assert await sessions(app, "user001") == 0
    assert await sessions(app, "user002") == 0
    assert (await follow(app, mine)).headers["location"] == "/user001/"
    assert (await follow(app, theirs)).headers["location"] == "/user002/"


async def test_a_newer_card_revokes_the_older_one(app: FastAPI) -> None:
    old, new = await card(app, "user001"), await card(app, "user001")
    assert refused(await follow(app, old))
    assert (await follow(app, new)).status_code == 303


async def test_a_revoked_card_is_refused(app: FastAPI) -> None:
    link = await card(app, "user001")
    async with client_for(app, "teacher") as teacher:
        assert (await teacher.delete("/admin/api/cards/user001")).json() == {"ok": True}
    assert refused(await follow(app, link))
    assert await sessions(app, "user001") == 0


async def test_a_password_reset_or_role_change_from_anywhere_ends_the_card(app: FastAPI) -> None:
    accounts = app.state.accounts
    reset, promoted = await card(app, "user001"), await card(app, "user002")
    await accounts.reset("user001", "another-password")
    await accounts.set_role("user002", Role.INSTRUCTOR)
    assert refused(await follow(app, reset))
    assert refused(await follow(app, promoted))


async def test_a_removed_account_cannot_be_logged_into_by_its_card(app: FastAPI) -> None:
    link = await card(app, "user001")
    await app.state.accounts.remove("user001")
    await app.state.accounts.add("user001", Role.PARTICIPANT, PASSWORD)  # a new account
    assert refused(await follow(app, link))


async def test_the_password_still_works_beside_the_card(app: FastAPI) -> None:
    link = await card(app, "user001")
    assert (await follow(app, link)).status_code == 303
    async with browser(app) as b:
        answer = await b.post("/login", data={"username": "user001", "password": PASSWORD})
        assert answer.status_code == 303
    assert await sessions(app, "user001") == 2


async def test_a_head_request_does_not_use_the_link(app: FastAPI) -> None:
    link = await card(app, "user001")
    async with browser(app) as b:
        assert (await b.head(link)).status_code == 405
        assert (await b.get(link)).status_code == 303


async def test_refused_links_count_as_failed_logins_and_are_throttled(app: FastAPI) -> None:
    good = await card(app, "user001")
    for n in range(3):
        assert refused(await follow(app, f"/login/card/{'x' * 43}{n}"))
    throttled = await follow(app, good)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "set-cookie" not in throttled.headers
    # another address is not slowed, and the waiting address's card was not used meanwhile
    assert (await follow(app, good, address="198.51.100.99")).status_code == 303
