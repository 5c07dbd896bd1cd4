"""Login cards in headless Chromium: the instructor's cards page makes cards whose QR codes, read
off the screen, log their participant in once; its actions (reset password, revoke) work from
the page; and printed (Chromium's own PDF) the cards come 8 to an A4 page with readable codes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from playwright.async_api import Browser, Page

from queue_manager.api.app import create_app
from queue_manager.cards.sheet import sheet_html
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.core.cards import IssuedCard, new_card_token, printed
from queue_manager.core.ids import UserId
from tests.support.participants import ACCOUNTS, PASSWORD
from tests.support.servers import serve
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture
async def app(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(redis_server, prefix, data_dir=tmp_path / "data"))
    async with application.router.lifespan_context(application):
        for name, role in ACCOUNTS.items():
            await application.state.accounts.add(name, role, PASSWORD)
        yield application


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def cards_page(browser: Browser, base: str) -> Page:
    """The instructor's dashboard, then its Login cards link."""
    page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
    await page.goto(f"{base}/login?next=/admin/")
    await page.fill("input[name=username]", "teacher")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/admin/")
    await page.click("[data-testid=cards-link]")
    await page.wait_for_url(f"{base}/admin/cards")
    page.on("dialog", lambda dialog: dialog.accept())
    return page


async def qr_on_screen(page: Page, user: str) -> str:
    shot = await page.locator(f".slot[data-user={user}] .qr").screenshot()
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    return code.text


def codes_in_pdf(data: bytes) -> list[set[str]]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [
            {c.text for c in zxingcpp.read_barcodes(page.render(scale=150 / 72).to_pil())}
            for page in document
        ]
    finally:
        document.close()


async def test_the_cards_page_makes_cards_whose_qr_codes_log_in_once(
    browser: Browser, base: str
) -> None:
    page = await cards_page(browser, base)
    slot = page.locator(".slot[data-user=user001]")
    await slot.locator("[data-testid=state]").filter(has_text="no card yet").wait_for()
    await page.click("[data-testid=cards-all]")
    await page.locator(".slot.ready").nth(1).wait_for()
    await slot.locator("[data-testid=state]").filter(has_text="not used yet").wait_for()

    link = await qr_on_screen(page, "user001")
    assert link == await slot.locator("a.qr").get_attribute("href")
    assert link.startswith(f"{base}/login/card/")

    phone = await (await browser.new_context()).new_page()
    await phone.goto(link, wait_until="commit")
    assert phone.url == f"{base}/user001/"
    cookies = {c["name"] for c in await phone.context.cookies()}
    assert "cw_session" in cookies
    again = await (await browser.new_context()).new_page()
    answer = await again.goto(link)
    assert answer is not None and answer.status == 410
    assert "already used or has expired" in await again.content()

    await page.reload()
    await slot.locator("[data-testid=state]").filter(has_text="used at").wait_for()


async def test_reset_password_and_revoke_from_the_page(
    browser: Browser, base: str, app: FastAPI
) -> None:
    page = await cards_page(browser, base)
    bob = page.locator(".slot[data-user=user002]")
    await bob.locator("[data-action=reset]").click()
    await bob.locator(".card:not(.placeholder) .password").wait_for()
    password = await bob.locator(".password").inner_text()
    assert password not in (PASSWORD, "ask the instructor")
    assert await app.state.accounts.verify("user002", password, "127.0.0.1") is not None
    link = await qr_on_screen(page, "user002")

    await bob.locator("[data-action=revoke]").click()
    await bob.locator("[data-testid=state]").filter(has_text="revoked").wait_for()
    phone = await (await browser.new_context()).new_page()
    answer = await phone.goto(link)
    assert answer is not None and answer.status == 410


async def test_the_page_prints_only_the_cards(browser: Browser, base: str) -> None:
    page = await cards_page(browser, base)
    await page.locator(".slot[data-user=user001] [data-action=new]").click()
    await page.locator(".slot.ready").wait_for()
    link = await page.locator(".slot.ready a.qr").get_attribute("href")
    pdf = await page.pdf(format="A4", prefer_css_page_size=True)
    assert codes_in_pdf(pdf) == [{link}]  # one page, one card; the empty slot is not printed
    document = pypdfium2.PdfDocument(pdf)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert "user001" in text and "New cards for everyone" not in text and "user002" not in text


async def test_a_printed_html_sheet_has_8_cards_per_a4_page_and_readable_codes(
    browser: Browser,
) -> None:
    cards = [
        printed(
            IssuedCard(
                UserId(f"user{i:03d}"),
                Role.PARTICIPANT,
                f"{i:06x}",
                new_card_token(),
                1_800_000_000.0,
                f"password-{i}",
            ),
            "https://workshop.example/",
        )
        for i in range(1, 21)
    ]
    page = await (await browser.new_context()).new_page()
    await page.set_content(sheet_html(cards))
    pages = codes_in_pdf(await page.pdf(format="A4", prefer_css_page_size=True))
    assert [len(p) for p in pages] == [8, 8, 4]
    assert set().union(*pages) == {c.link for c in cards}
