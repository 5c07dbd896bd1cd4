"""The dashboard's sign-out buttons, clicked in headless Chromium against a real server: one
participant everywhere, then the whole room; the instructor's own dashboard stays live.
(A browser test: it belongs with tests/browser/ once that folder exists.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from tests.support.participants import ACCOUNTS, PASSWORD
from tests.support.servers import serve
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture
async def base(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[str]:
    """The app with the usual accounts, on a real uvicorn."""
    app = create_app(make_settings(redis_server, prefix, data_dir=tmp_path / "data"))
    async with app.router.lifespan_context(app):
        for name, role in ACCOUNTS.items():
            await app.state.accounts.add(name, role, PASSWORD)
        async with serve(app) as url:
            yield url


async def session_of(base: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=10)
    answer = await client.post("/login", data={"username": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


async def dashboard(browser: Browser, base: str) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{base}/login?next=/admin/")
    await page.fill("input[name=username]", "teacher")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/admin/")
    await page.wait_for_selector("[data-testid=conn-status]:has-text('live')", timeout=30_000)
    return page


async def test_the_dashboard_signs_out_one_participant_then_the_room(
    browser: Browser,
    base: str,
) -> None:
    alice, bob = await session_of(base, "user001"), await session_of(base, "user002")
    try:
        page = await dashboard(browser, base)
        page.on("dialog", lambda d: d.accept())
        await page.locator("tr[data-user=user001] [data-action=sign-out-user]").click()
        await page.locator("[data-testid=toasts]").get_by_text("user001 signed out").wait_for()
        assert (await alice.get("/api/me")).status_code == 401
        assert (await bob.get("/api/me")).status_code == 200

        await page.locator("[data-testid=sign-out-room]").click()
        await page.locator("[data-testid=toasts]").get_by_text("Every participant").wait_for()
        assert (await bob.get("/api/me")).status_code == 401
        assert await page.locator("[data-testid=conn-status]").text_content() == "live"
        await page.context.close()
    finally:
        await alice.aclose()
        await bob.aclose()
