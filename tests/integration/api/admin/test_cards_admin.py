"""The instructor's login cards: `/admin/cards` and `/admin/api/cards...` (make, new card, reset
password, revoke, states), for the instructor only; an unknown user is a 404 that changes
nothing; passwords printed from the workshop's credentials file only where still right."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.settings import Settings
from tests.support.participants import PASSWORD, client_for

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/admin/api/cards", None),
    ("POST", "/admin/api/cards", {}),
    ("POST", "/admin/api/cards/user002", {}),
    ("POST", "/admin/api/cards/user002/reset-password", {}),
    ("DELETE", "/admin/api/cards/user002", None),
]


def credentials_of(app: FastAPI) -> Path:
    settings: Settings = app.state.service.settings
    return settings.data_dir / "credentials.csv"


def write_credentials(app: FastAPI, rows: list[tuple[str, str, str]]) -> None:
    path = credentials_of(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("user", "role", "password"), *rows])


async def follow(app: FastAPI, link: str) -> httpx.Response:
    async with client_for(app, None) as browser:
        return await browser.get(urlsplit(link).path)


async def states(teacher: httpx.AsyncClient) -> dict[str, str]:
    answer = await teacher.get("/admin/api/cards")
    assert answer.status_code == 200
    return {s["user"]: s["state"] for s in answer.json()}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_participants_get_403_and_nobody_401_and_nothing_changes(
    alice: httpx.AsyncClient,
    nobody: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = await states(teacher)
    assert (await alice.request(method, path, json=body)).status_code == 403
    assert (await nobody.request(method, path, json=body)).status_code == 401
    assert (
        await states(teacher) == before == {"teacher": "none", "user001": "none", "user002": "none"}
    )


async def test_the_cards_page_is_the_instructors(
    alice: httpx.AsyncClient, nobody: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    away = await nobody.get("/admin/cards")
    assert (away.status_code, away.headers["location"]) == (303, "/login?next=/admin/cards")
    assert (await alice.get("/admin/cards")).status_code == 403
    page = await teacher.get("/admin/cards")
    assert page.status_code == 200
    assert 'data-user="user001"' in page.text and 'data-user="user002"' in page.text
    assert 'data-user="teacher"' not in page.text  # participants' cards; the API makes any
    assert "/admin/static/cards.js" in page.text
    assert (await teacher.get("/admin/static/cards.js")).status_code == 200
    assert 'href="/admin/cards"' in (await teacher.get("/admin/")).text


async def test_cards_for_everyone_log_each_participant_in_with_the_password_still_right(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    write_credentials(
        app, [("user001", "participant", PASSWORD), ("user002", "participant", "changed-since")]
    )
    made = await teacher.post("/admin/api/cards", json={"expires": "2h"})
    assert made.status_code == 200, made.text
    cards = {c["user"]: c for c in made.json()["cards"]}
    assert sorted(cards) == ["user001", "user002"]
    assert cards["user001"]["password"] == PASSWORD
    assert cards["user002"]["password"] is None
    assert "ask the instructor" in cards["user002"]["html"]
    for user, card in cards.items():
        assert card["url"] == f"http://testserver/{user}/"
        assert f'href="{card["link"]}"' in card["html"]
        assert (await follow(app, card["link"])).headers["location"] == f"/{user}/"
    assert await states(teacher) == {"teacher": "none", "user001": "used", "user002": "used"}


async def test_a_card_for_an_unknown_user_is_a_404_that_changes_nothing(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    kept = (await teacher.post("/admin/api/cards/user001", json={})).json()["link"]
    before = await states(teacher)
    for method, path, body in [
        ("POST", "/admin/api/cards", {"users": ["user002", "nosuchuser"]}),
        ("POST", "/admin/api/cards/nosuchuser", {}),
        ("POST", "/admin/api/cards/nosuchuser/reset-password", {}),
        ("DELETE", "/admin/api/cards/nosuchuser", None),
    ]:
        answer = await teacher.request(method, path, json=body)
        assert answer.status_code == 404, (path, answer.text)
        assert "nosuchuser" in answer.json()["error"]["message"]
    assert await states(teacher) == before
    assert (await follow(app, kept)).headers["location"] == "/user001/"


@pytest.mark.parametrize("expires", ["forever", "0h", "31d", "12"])
async def test_a_bad_lifetime_is_a_422_that_changes_nothing(
    teacher: httpx.AsyncClient, expires: str
) -> None:
    answer = await teacher.post("/admin/api/cards", json={"expires": expires})
    assert answer.status_code == 422
    assert (await states(teacher))["user001"] == "none"


async def test_reset_password_is_one_action_that_ends_old_sessions_and_the_old_card(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    write_credentials(app, [("user001", "participant", PASSWORD), ("teacher", "instructor", "x")])
    old_card = (await teacher.post("/admin/api/cards/user001", json={})).json()["link"]
    async with client_for(app, None) as browser:
        login = await browser.post("/login", data={"username": "user001", "password": PASSWORD})
        assert login.status_code == 303
        assert (await browser.get("/api/me")).status_code == 200

        reset = await teacher.post("/admin/api/cards/user001/reset-password", json={})
        assert reset.status_code == 200, reset.text
        card = reset.json()
        assert card["password"] not in (None, PASSWORD)
        assert (await browser.get("/api/me")).status_code == 401  # the old session ended
    async with client_for(app, None) as browser:
        old = await browser.post("/login", data={"username": "user001", "password": PASSWORD})
        assert old.status_code == 401
        new = {"username": "user001", "password": card["password"]}
        assert (await browser.post("/login", data=new)).status_code == 303
    assert (await follow(app, old_card)).status_code == 410
    assert (await follow(app, card["link"])).headers["location"] == "/user001/"
    raw = credentials_of(app).read_bytes()
    assert raw.count(b"\r\n") == 3 and raw.replace(b"\r\n", b"").count(b"\n") == 0
    rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert rows == [
        ["user", "role", "password"],
        ["user001", "participant", card["password"]],
        ["teacher", "instructor", "x"],
    ]
    assert credentials_of(app).stat().st_mode & 0o777 == 0o600


async def test_the_states_say_where_each_card_stands(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    first = (await teacher.post("/admin/api/cards/user001", json={})).json()
    await teacher.post("/admin/api/cards/user002", json={})
    assert await states(teacher) == {"teacher": "none", "user001": "active", "user002": "active"}
    await follow(app, first["link"])
    await teacher.delete("/admin/api/cards/user002")
    listed = {s["user"]: s for s in (await teacher.get("/admin/api/cards")).json()}
    assert listed["user001"]["state"] == "used" and listed["user001"]["at"] > 0
    assert listed["user001"]["card_id"] == first["card_id"]
    assert listed["user002"]["state"] == "revoked"
    assert "link" not in listed["user001"]  # a link is never shown again
    await teacher.post("/admin/api/cards/user002", json={})
    await app.state.accounts.reset("user002", "set-elsewhere")
    assert (await states(teacher))["user002"] == "stale"


async def test_links_name_the_public_address_the_proxy_says_or_the_setting(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    # The in-process client connects from 127.0.0.1: the trusted proxy (nginx on this host).
    behind_tls = {"X-Forwarded-Proto": "https", "Host": "workshop.example"}
    made = await teacher.post("/admin/api/cards/user001", json={}, headers=behind_tls)
    assert made.json()["link"].startswith("https://workshop.example/login/card/")
    settings: Settings = app.state.service.settings
    app.state.service.settings = settings.model_copy(update={"public_url": "https://w.example/"})
    try:
        made = await teacher.post("/admin/api/cards/user001", json={})
    finally:
        app.state.service.settings = settings
    assert made.json()["url"] == "https://w.example/user001/"


async def test_the_cards_api_is_in_the_api_description(teacher: httpx.AsyncClient) -> None:
    paths = (await teacher.get("/openapi.json")).json()["paths"]
    assert {"get", "post"} <= set(paths["/admin/api/cards"])
    assert "post" in paths["/admin/api/cards/{user}/reset-password"]
    assert "get" in paths["/login/card/{token}"]
