"""The dashboard's sign-out buttons, clicked in headless Chromium against a real server: one
participant everywhere, then the whole room; the instructor's own dashboard stays live.
(A browser test: it belongs with tests/browser/ once that folder exists.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page

from tests.participant_app import PASSWORD, app  # noqa: F401
from tests.servers import serve
from tests.workshop_stack import browser  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:  # noqa: F811
    async with serve(app) as url:
        yield url


async def session_of(base: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=10)
    answer = await client.post("/login", data={"username": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


async def dashboard(browser: Browser, base: str) -> Page:  # noqa: F811
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{base}/login?next=/admin/")
    await page.fill("input[name=username]", "teacher")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/admin/")
    await page.wait_for_selector("[data-testid=conn-status]:has-text('live')", timeout=30_000)
    return page


async def test_the_dashboard_signs_out_one_participant_then_the_room(
    browser: Browser,  # noqa: F811
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
