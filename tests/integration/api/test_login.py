"""Logging in: the login page's signed session cookie, HTTP Basic, and what each lets through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.store.accounts import AccountStore, Role
from tests.support.settings import make_settings


@pytest.fixture
async def client(redis_server: RedisServer, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(redis_server, prefix))
    async with app.router.lifespan_context(app):
        accounts: AccountStore = app.state.accounts
        await accounts.add("user001", Role.PARTICIPANT, "participant-pw")
        await accounts.add("teacher", Role.INSTRUCTOR, "instructor-pw")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def test_the_login_page_sets_a_session_that_identifies_the_participant(
    client: httpx.AsyncClient,
) -> None:
    assert "<form" in (await client.get("/login")).text
    r = await client.post("/login", data={"username": "user001", "password": "participant-pw"})
    assert r.status_code == 303
    assert r.headers["location"] == "/user001/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    me = await client.get("/api/me")
    assert me.json() == {"name": "user001", "role": "participant"}


async def test_the_instructor_lands_on_the_dashboard(client: httpx.AsyncClient) -> None:
    r = await client.post("/login", data={"username": "teacher", "password": "instructor-pw"})
    assert r.headers["location"] == "/admin/"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("user001", "wrong"),
        ("nobody", "participant-pw"),
        ("", "x"),
        ("../user001", "participant-pw"),
    ],
)
async def test_a_bad_login_gets_401_and_no_session(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    r = await client.post("/login", data={"username": username, "password": password})
    assert r.status_code in (401, 422)
    assert "set-cookie" not in r.headers
    assert (await client.get("/api/me")).status_code == 401


async def test_http_basic_with_the_same_credentials_works(client: httpx.AsyncClient) -> None:
    ok = await client.get("/api/me", auth=("teacher", "instructor-pw"))
    assert ok.json() == {"name": "teacher", "role": "instructor"}
    bad = await client.get("/api/me", auth=("teacher", "nope"))
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Basic")
    garbage = await client.get("/api/me", headers={"Authorization": "Basic !!!"})
    assert garbage.status_code == 401


async def test_a_tampered_or_foreign_cookie_is_refused(client: httpx.AsyncClient) -> None:
    await client.post("/login", data={"username": "user001", "password": "participant-pw"})
    value = client.cookies["cw_session"]
    client.cookies.set("cw_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await client.get("/api/me")).status_code == 401
    client.cookies.set("cw_session", "eyJ1IjoidGVhY2hlciJ9.forged.signature")
    assert (await client.get("/api/me")).status_code == 401


async def test_a_removed_account_loses_its_session(client: httpx.AsyncClient) -> None:
    await client.post("/login", data={"username": "user001", "password": "participant-pw"})
    await client.app.state.accounts.remove("user001")  # type: ignore[attr-defined]
    assert (await client.get("/api/me")).status_code == 401


@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/user001/?x=1", "/user001/?x=1"),
        ("//evil.example/", "/user001/"),
        ("https://evil.example/", "/user001/"),
        ("/\\evil.example", "/user001/"),
    ],
)
async def test_login_redirects_only_within_the_site(
    client: httpx.AsyncClient, next_url: str, location: str
) -> None:
    r = await client.post(
        "/login", data={"username": "user001", "password": "participant-pw", "next": next_url}
    )
    assert r.headers["location"] == location


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await client.post("/login", data={"username": "user001", "password": "participant-pw"})
    await client.post("/logout")
    assert (await client.get("/api/me")).status_code == 401


async def test_the_login_page_escapes_what_it_echoes(client: httpx.AsyncClient) -> None:
    page = (await client.get("/login", params={"next": '"><script>alert(1)</script>'})).text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;" in page


async def test_the_root_sends_each_visitor_where_they_belong(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).headers["location"] == "/login"
    for name, password, home in [
        ("user001", "participant-pw", "/user001/"),
        ("teacher", "instructor-pw", "/admin/"),
    ]:
        await client.post("/login", data={"username": name, "password": password})
        r = await client.get("/")
        assert (r.status_code, r.headers["location"]) == (303, home)
        await client.post("/logout")
    assert (await client.get("/")).headers["location"] == "/login"
    wrong = await client.get("/", auth=("user001", "wrong"))
    assert (wrong.status_code, wrong.headers["location"]) == (303, "/login")
