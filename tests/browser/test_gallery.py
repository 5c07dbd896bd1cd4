"""What the room is making, in headless Chromium (1920x1080) on a whole local workshop: a
participant's output lands in the instructor's gallery live; the instructor shows it to
everyone; it appears on two participants' pages (and on a page opened later), each can close
it, and "Stop showing" takes it off every screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page

from tests.support.pages import (
    PageLog,
    close_dialogs,
    load_default_graph,
    logged_in,
    open_dashboard,
    open_page,
    run,
)
from tests.support.workshop import Workshop, start_workshop, stop_workshop

# Four real pages (a dashboard, three participants): minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

PANEL = "#cw-showcase"
IMAGE_LOADED = """(sel) => {
    const img = document.querySelector(sel);
    return !!img && img.complete && img.naturalWidth > 0;
}"""


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("gallery"), users=2)
    try:
        yield running
    finally:
        stop_workshop(proc)


async def dashboard(browser: Browser, workshop: Workshop) -> Page:
    page = await open_dashboard(browser, workshop)
    await page.wait_for_selector("[data-testid=gallery-empty]", timeout=30_000)
    return page


async def participant(browser: Browser, workshop: Workshop, user: str) -> tuple[Page, PageLog]:
    context = await logged_in(browser, workshop, user)
    page = await context.new_page()
    log = PageLog()
    log.watch(page, workshop.url)
    await open_page(page, workshop, user)
    return page, log


async def shows(page: Page, caption: str, author: str) -> None:
    """The panel is on screen with the shown image loaded, its caption and its author."""
    await page.wait_for_selector(PANEL, state="visible", timeout=30_000)
    await page.wait_for_function(IMAGE_LOADED, arg="#cw-showcase-image", timeout=30_000)
    assert await page.text_content("#cw-showcase-caption") == caption
    assert await page.text_content("#cw-showcase-author") == author


async def test_an_output_lands_in_the_gallery_and_is_shown_on_every_screen(
    browser: Browser, workshop: Workshop
) -> None:
    admin = await dashboard(browser, workshop)
    alice, alice_log = await participant(browser, workshop, "user001")
    bob, bob_log = await participant(browser, workshop, "user002")
    assert await alice.is_hidden(PANEL) and await bob.is_hidden(PANEL)

    # Alice runs; her image appears in the dashboard's gallery without a reload.
    await load_default_graph(alice)
    prompt_id = await run(alice)
    tile = admin.locator(f"[data-testid=gallery-item][data-job-id='{prompt_id}']").first
    await tile.wait_for(timeout=60_000)
    assert await tile.get_attribute("data-user") == "user001"
    assert await tile.get_attribute("data-media") == "image"
    await admin.wait_for_function(
        IMAGE_LOADED, arg=f"[data-job-id='{prompt_id}'] img", timeout=30_000
    )

    # The instructor shows it, with her name and a caption.
    await tile.locator("[data-testid=gallery-show]").click()
    dialog = admin.locator("[data-testid=showcase-dialog]")
    await dialog.wait_for(state="visible")
    await admin.fill("[data-testid=showcase-caption]", "Look at this one")
    await admin.check("[data-testid=showcase-author]")
    await admin.click("[data-testid=showcase-confirm]")
    await admin.wait_for_selector("[data-testid=showcase-current]", state="visible")
    await admin.wait_for_selector(f"[data-job-id='{prompt_id}'].on-screen")

    for page in (alice, bob):
        await shows(page, "Look at this one", "by user001")

    # Bob closes it: gone from his screen, still on Alice's.
    await close_dialogs(bob)  # the first visit's template browser may have opened late
    await bob.click("#cw-showcase-close")
    await bob.wait_for_selector(PANEL, state="hidden")
    assert await alice.is_visible(PANEL)

    # A page opened later shows what is on screen now.
    late, late_log = await participant(browser, workshop, "user002")
    await shows(late, "Look at this one", "by user001")

    # "Stop showing" takes it off every screen.
    await admin.click("[data-testid=showcase-stop]")
    for page in (alice, late):
        await page.wait_for_selector(PANEL, state="hidden", timeout=30_000)
    await admin.wait_for_selector("[data-testid=showcase-current]", state="hidden")

    # Shown again without the name: Bob, who closed the earlier one, sees this one.
    await tile.locator("[data-testid=gallery-show]").click()
    await admin.fill("[data-testid=showcase-caption]", "Once more")
    await admin.click("[data-testid=showcase-confirm]")
    await bob.wait_for_selector(PANEL, state="visible", timeout=30_000)
    await bob.wait_for_function(IMAGE_LOADED, arg="#cw-showcase-image", timeout=30_000)
    assert await bob.text_content("#cw-showcase-caption") == "Once more"
    assert await bob.is_hidden("#cw-showcase-author")

    for log in (alice_log, bob_log, late_log):
        assert [e for e in log.errors if "showcase" in e] == [], log.errors
    await admin.click("[data-testid=showcase-stop]")
    await bob.wait_for_selector(PANEL, state="hidden", timeout=30_000)
    for page in (admin, alice, bob, late):
        await page.context.close()
