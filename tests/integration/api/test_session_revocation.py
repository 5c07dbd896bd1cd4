"""Sessions end when they should, at once and in every process: logout (this session), a
password reset, a role change, removal, "sign out everywhere" for one user or the whole room;
open sockets of an ended session are closed; HTTP Basic follows the password."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from fastapi import FastAPI
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from queue_manager.api.app import create_app
from queue_manager.cli.users import run_users_command
from queue_manager.core.accounts import Role
from queue_manager.core.ids import SessionId
from queue_manager.settings import Settings
from queue_manager.store.accounts import AccountStore
from queue_manager.store.keys import Keys
from tests.support.participants import PASSWORD, client_for
from tests.support.servers import serve

COOKIE = "cw_session"


def settings_of(application: FastAPI) -> Settings:
    settings: Settings = application.state.service.settings
    return settings


def browser(application: FastAPI, cookie: str | None = None) -> httpx.AsyncClient:
    """A client that carries only a session cookie (no Basic credentials)."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    )
    if cookie is not None:
        client.cookies.set(COOKIE, cookie)
    return client


async def log_in(application: FastAPI, name: str, password: str = PASSWORD) -> str:
    """A fresh session of `name` (one browser): the cookie's value."""
    async with browser(application) as client:
        answer = await client.post("/login", data={"username": name, "password": password})
        assert answer.status_code == 303, answer.text
        return answer.cookies[COOKIE]


async def me(application: FastAPI, cookie: str) -> int:
    async with browser(application, cookie) as client:
        return (await client.get("/api/me")).status_code


async def instructor(application: FastAPI, method: str, path: str) -> httpx.Response:
    async with client_for(application, "teacher") as client:
        return await client.request(method, f"/admin/api{path}")


@pytest.fixture
async def second_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Another queue-manager process on the same Redis, with the same settings."""
    other = create_app(settings_of(app))
    async with other.router.lifespan_context(other):
        yield other


async def test_an_old_cookie_is_refused_after_logout(app: FastAPI) -> None:
    cookie = await log_in(app, "user001")
    assert await me(app, cookie) == 200
    async with browser(app, cookie) as client:
        out = await client.post("/logout")
        assert out.status_code == 303
    assert await me(app, cookie) == 401  # the cookie replayed after logout
    async with browser(app, cookie) as client:
        page = await client.get("/user001/")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")


async def test_logout_ends_only_the_session_it_is_sent_from(app: FastAPI) -> None:
    laptop, phone = await log_in(app, "user001"), await log_in(app, "user001")
    async with browser(app, laptop) as client:
        await client.post("/logout")
    assert await me(app, laptop) == 401
    assert await me(app, phone) == 200


async def test_logout_everywhere_ends_every_session_of_the_account(
    app: FastAPI,
) -> None:
    laptop, phone = await log_in(app, "user001"), await log_in(app, "user001")
    other = await log_in(app, "user002")
    async with browser(app, laptop) as client:
        assert (await client.post("/logout", data={"everywhere": "true"})).status_code == 303
    assert [await me(app, laptop), await me(app, phone), await me(app, other)] == [401, 401, 200]


async def test_a_validly_signed_cookie_without_a_live_session_is_refused(
    app: FastAPI,
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    secret = settings_of(app).secret_key.get_secret_value()
    forged = URLSafeTimedSerializer(secret, salt="cw-session").dumps({"u": "user001"})
    assert await me(app, forged) == 401


async def test_a_password_reset_ends_every_session_of_that_account(
    app: FastAPI,
) -> None:
    cookies = [await log_in(app, "user001"), await log_in(app, "user001")]
    other = await log_in(app, "user002")
    await app.state.accounts.reset("user001", "a-new-password")
    assert [await me(app, c) for c in cookies] == [401, 401]
    assert await me(app, other) == 200
    assert await me(app, await log_in(app, "user001", "a-new-password")) == 200


async def test_the_users_command_ends_sessions_on_reset_role_change_and_removal(
    app: FastAPI,
) -> None:
    settings = settings_of(app)

    async def users(action: str, name: str, role: str = "participant") -> int:
        return await asyncio.to_thread(
            run_users_command, settings, action, name, role, "command-line-password"
        )

    reset = await log_in(app, "user001")
    assert await users("reset", "user001") == 0
    assert await me(app, reset) == 401

    promoted = await log_in(app, "user002")
    assert await users("role", "user002", "instructor") == 0
    assert await me(app, promoted) == 401
    async with client_for(app, None) as client:
        client.auth = ("user002", PASSWORD)
        assert (await client.get("/api/me")).json() == {"name": "user002", "role": "instructor"}

    removed = await log_in(app, "user002")
    assert await users("remove", "user002") == 0
    assert await me(app, removed) == 401


async def test_signing_a_user_out_everywhere_leaves_the_others_signed_in(
    app: FastAPI,
) -> None:
    mine = [await log_in(app, "user001"), await log_in(app, "user001")]
    theirs = await log_in(app, "user002")
    teachers = await log_in(app, "teacher")
    answer = await instructor(app, "POST", "/users/user001/sign-out")
    assert answer.status_code == 200, answer.text
    assert [await me(app, c) for c in mine] == [401, 401]
    assert await me(app, theirs) == 200
    assert await me(app, teachers) == 200
    assert (await instructor(app, "POST", "/users/nobody/sign-out")).status_code == 404


async def test_a_room_wide_sign_out_ends_every_participant_but_not_the_instructor(
    app: FastAPI,
) -> None:
    participants = [await log_in(app, "user001"), await log_in(app, "user002")]
    teachers = await log_in(app, "teacher")
    answer = await instructor(app, "POST", "/sessions/sign-out")
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["users"]) == ["user001", "user002"]
    assert [await me(app, c) for c in participants] == [401, 401]
    assert await me(app, teachers) == 200  # the dashboard that pressed the button stays


async def test_participants_cannot_sign_anyone_out(app: FastAPI) -> None:
    async with client_for(app, "user001") as client:
        assert (await client.post("/admin/api/users/user002/sign-out")).status_code == 403
        assert (await client.post("/admin/api/sessions/sign-out")).status_code == 403


async def test_another_process_on_the_same_redis_refuses_a_revoked_cookie(
    app: FastAPI,
    second_app: FastAPI,
) -> None:
    logged_out, reset, signed_out = [await log_in(app, "user001") for _ in range(3)]
    assert await me(second_app, logged_out) == 200
    async with browser(app, logged_out) as client:
        await client.post("/logout")
    assert await me(second_app, logged_out) == 401
    assert await me(second_app, reset) == 200
    await app.state.accounts.reset("user001", "a-new-password")
    assert await me(second_app, reset) == 401
    teachers = await log_in(second_app, "teacher")
    await instructor(app, "POST", "/users/teacher/sign-out")
    assert await me(second_app, teachers) == 401
    assert await me(second_app, signed_out) == 401


async def test_basic_credentials_stop_working_at_once_after_a_reset_in_every_process(
    app: FastAPI,
    second_app: FastAPI,
) -> None:
    async with client_for(app, "user001") as here, client_for(second_app, "user001") as there:
        for client in (here, there):  # each process now remembers this success
            assert (await client.get("/api/me")).status_code == 200
        await app.state.accounts.reset("user001", "a-new-password")
        for client in (here, there):
            assert (await client.get("/api/me")).status_code == 401
            client.auth = ("user001", "a-new-password")
            assert (await client.get("/api/me")).status_code == 200


async def _closed_with(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code."""

    async def read_all() -> None:
        while True:
            await ws.recv()

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(read_all(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_open_sockets_of_an_ended_session_are_closed_in_every_process(
    app: FastAPI,
) -> None:
    participant = await log_in(app, "user001")
    teachers = await log_in(app, "teacher")
    async with serve(app) as here, serve(create_app(settings_of(app))) as there:
        ws_url = there.replace("http", "ws", 1)
        page = await websockets.connect(
            f"{ws_url}/user001/ws", additional_headers={"Cookie": f"{COOKIE}={participant}"}
        )
        dashboard = await websockets.connect(
            f"{ws_url}/admin/ws", additional_headers={"Cookie": f"{COOKIE}={teachers}"}
        )
        async with page, dashboard:
            await asyncio.wait_for(page.recv(), 5)  # connected: the first `status`
            await asyncio.wait_for(dashboard.recv(), 5)  # the first `state`
            async with httpx.AsyncClient(base_url=here, auth=("teacher", PASSWORD)) as admin:
                assert (await admin.post("/admin/api/users/user001/sign-out")).is_success
                assert await _closed_with(page) == 1008
                assert (await admin.post("/admin/api/users/teacher/sign-out")).is_success
                assert await _closed_with(dashboard) == 1008


async def test_a_login_checked_against_the_old_password_opens_no_session_after_a_reset(
    redis: Redis, prefix: str
) -> None:
    store = AccountStore(redis, Keys(prefix))
    await store.add("user001", Role.PARTICIPANT, PASSWORD)
    checked = await store.record("user001")
    assert checked is not None
    await store.reset("user001", "a-new-password")  # lands while argon2 runs
    assert not await store.open_session(checked, SessionId("late"), time.time() + 60)
    again = await store.record("user001")
    assert again is not None and dict(again.sessions) == {}
