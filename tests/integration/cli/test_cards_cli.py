"""`comfy-workshop cards`, as an operator runs it (a subprocess against the workshop's Redis): a
PDF or HTML of cards whose QR codes and links log their participant in (checked against the
app on the same Redis), passwords from credentials.csv or reset, and clear refusals that
change nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pypdfium2
import pytest
import zxingcpp
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.store.accounts import AccountStore
from tests.support.settings import make_settings

PASSWORD = "workshop-password"
URL = "https://workshop.example/"
PARTICIPANTS = [f"user{i:03d}" for i in range(1, 10)]  # 9: two PDF pages


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
async def app(redis_server: RedisServer, prefix: str, data: Path) -> AsyncIterator[FastAPI]:
    """The workshop the command acts on: its accounts, and its credentials file (user002's
    password changed since the file was written)."""
    application = create_app(make_settings(redis_server, prefix, data_dir=data))
    async with application.router.lifespan_context(application):
        accounts: AccountStore = application.state.accounts
        rows = [("user", "role", "password")]
        for name in PARTICIPANTS:
            await accounts.add(name, Role.PARTICIPANT, PASSWORD)
            rows.append((name, "participant", PASSWORD if name != "user002" else "old-password"))
        await accounts.add("teacher", Role.INSTRUCTOR, PASSWORD)
        with (data / "credentials.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        yield application


async def cards(
    redis_server: RedisServer, prefix: str, data: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`comfy-workshop cards ARGS` run in the data folder's parent."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    environ |= {"CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix, **env}
    command = [sys.executable, "-m", "queue_manager", "cards", "--data", str(data), *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=environ, cwd=data.parent, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


async def logs_in(app: FastAPI, link: str) -> str | None:
    """Where following `link` lands (None: refused)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        answer = await browser.get(urlsplit(link).path)
    return answer.headers["location"] if answer.status_code == 303 else None


def pdf_codes(path: Path) -> list[set[str]]:
    document = pypdfium2.PdfDocument(path)
    try:
        return [
            {c.text for c in zxingcpp.read_barcodes(page.render(scale=150 / 72).to_pil())}
            for page in document
        ]
    finally:
        document.close()


def html_cards(path: Path) -> dict[str, tuple[str, str]]:
    """user -> (link, password) as the page prints them."""
    found = {}
    for card in re.findall(r'<article class="card".*?</article>', path.read_text()):
        user = re.search(r'data-user="([^"]+)"', card)
        link = re.search(r'<a class="qr" href="([^"]+)"', card)
        password = re.search(r'class="password">([^<]*)<', card)
        assert user and link and password, card
        found[user[1]] = (link[1], password[1])
    return found


async def test_the_pdf_has_a_card_per_participant_whose_qr_code_logs_them_in(
    app: FastAPI, redis_server: RedisServer, prefix: str, data: Path
) -> None:
    done = await cards(redis_server, prefix, data, "--out", "cards.pdf", "--url", URL)
    assert done.returncode == 0, done.stderr
    pdf = data.parent / "cards.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert pdf.stat().st_mode & 0o777 == 0o600  # live login links and passwords
    pages = pdf_codes(pdf)
    assert [len(p) for p in pages] == [8, 1]
    links = set().union(*pages)
    assert all(link.startswith(f"{URL}login/card/") for link in links)
    landed = sorted([await logs_in(app, link) for link in links], key=str)
    assert landed == [f"/{name}/" for name in PARTICIPANTS]
    assert f"participants' address {URL} (from --url)" in done.stderr


async def test_the_html_prints_known_passwords_and_working_links(
    app: FastAPI, redis_server: RedisServer, prefix: str, data: Path
) -> None:
    done = await cards(
        redis_server, prefix, data, "--out", "cards.html", "--users", "user001,user002,teacher",
        "--expires", "2h", CW_PUBLIC_URL="https://room.example",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = html_cards(data.parent / "cards.html")
    assert sorted(printed) == ["teacher", "user001", "user002"]
    assert printed["user001"][1] == PASSWORD
    assert printed["user002"][1] == "ask the instructor"  # changed since the file was written
    assert printed["teacher"][1] == "ask the instructor"  # not in the file
    assert await logs_in(app, printed["user002"][0]) == "/user002/"
    assert await logs_in(app, printed["teacher"][0]) == "/admin/"
    assert await logs_in(app, printed["user001"][0]) == "/user001/"
    assert await logs_in(app, printed["user001"][0]) is None  # once
    assert "(from CW_PUBLIC_URL)" in done.stderr


async def test_new_cards_revoke_the_users_older_ones(
    app: FastAPI, redis_server: RedisServer, prefix: str, data: Path
) -> None:
    first = await cards(redis_server, prefix, data, "--out", "a.html", "--users", "user001")
    second = await cards(redis_server, prefix, data, "--out", "b.html", "--users", "user001")
    assert first.returncode == second.returncode == 0
    old = html_cards(data.parent / "a.html")["user001"][0]
    new = html_cards(data.parent / "b.html")["user001"][0]
    assert await logs_in(app, old) is None
    assert await logs_in(app, new) == "/user001/"
    assert new.startswith("http://127.0.0.1:8188/login/card/")
    assert "the address `up` prints" in first.stderr


async def test_reset_passwords_prints_new_ones_and_keeps_them_in_the_credentials_file(
    app: FastAPI, redis_server: RedisServer, prefix: str, data: Path
) -> None:
    done = await cards(
        redis_server, prefix, data, "--out", "c.html", "--users", "user002", "--reset-passwords"
    )
    assert done.returncode == 0, done.stderr
    link, password = html_cards(data.parent / "c.html")["user002"]
    assert password not in (PASSWORD, "old-password", "ask the instructor")
    accounts: AccountStore = app.state.cards._accounts
    assert await accounts.verify("user002", password) is not None
    assert await accounts.verify("user002", PASSWORD) is None
    raw = (data / "credentials.csv").read_bytes().decode()
    rows = {r["user"]: r["password"] for r in csv.DictReader(io.StringIO(raw, newline=""))}
    assert rows["user002"] == password and rows["user001"] == PASSWORD
    assert raw.count("\r\n") == len(PARTICIPANTS) + 1
    assert await logs_in(app, link) == "/user002/"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--users", "nosuchuser"), "no account 'nosuchuser'"),
        (("--users", "user001,nosuchuser", "--reset-passwords"), "no account 'nosuchuser'"),
        (("--users", " , "), "--users names nobody"),
        (("--expires", "forever"), "a lifetime is like 12h"),
        (("--out", "cards.txt"), "ends in .pdf or .html"),
        (("--out", "missing/cards.pdf"), "cannot write into missing"),
        (("--url", "workshop.example"), "public URL must look like"),
    ],
)
async def test_bad_input_is_one_clear_line_and_changes_nothing(
    app: FastAPI,
    redis_server: RedisServer,
    prefix: str,
    data: Path,
    args: tuple[str, ...],
    says: str,
) -> None:
    (kept,) = await app.state.cards.issue(["user001"], 3600, "test")
    link = f"/login/card/{kept.token}"
    before = (data / "credentials.csv").read_bytes()
    refused = await cards(
        redis_server, prefix, data, *(args if "--out" in args else (*args, "--out", "x.pdf"))
    )
    assert refused.returncode == 1
    assert says in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (data.parent / "x.pdf").exists()
    assert (data / "credentials.csv").read_bytes() == before
    assert await app.state.cards._accounts.verify("user001", PASSWORD) is not None
    assert await logs_in(app, link) == "/user001/"  # the card made before still works


def test_without_a_running_workshop_the_command_says_so(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    command = [sys.executable, "-m", "queue_manager", "cards", "--data", str(tmp_path)]
    done = subprocess.run(
        command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "no workshop is running" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cards.pdf").exists()
