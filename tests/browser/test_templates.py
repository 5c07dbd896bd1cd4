"""The Templates browser in the real ComfyUI page (frontend 1.58.1) in headless Chromium at
1920x1080: the workshop's published workflows as their own category at the top, ComfyUI's
official templates after them, every thumbnail shown (drawn where the media packages are not
installed), and a workshop workflow opened from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from queue_manager.storage.templates import TemplatePackage
from tests.support.pages import PageLog, logged_in
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

UI = (Path(__file__).parents[1] / "data" / "workflows" / "txt2img-ui.json").read_bytes()
CARDS = "[data-testid^='template-workflow-']"
ACTIVE = "(path) => app.extensionManager.workflow.activeWorkflow?.path === path"


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("templates"), users=1)
    try:
        yield running
    finally:
        stop_workshop(proc)


def official_names() -> set[str]:
    index = TemplatePackage().read_json("index.json") or []
    return {t["name"] for c in index for t in c["templates"]}


async def test_the_templates_browser_shows_the_workshop_first_then_comfyuis_templates(
    browser: Browser, workshop: Workshop
) -> None:
    auth = ("instructor", workshop.passwords["instructor"])
    async with httpx.AsyncClient(base_url=workshop.url, auth=auth, timeout=30) as teacher:
        r = await teacher.post("/admin/api/workflows", params={"name": "Step 1"}, content=UI)
        assert r.status_code == 200, r.text
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    log = PageLog()
    log.watch(page, workshop.url)
    await page.goto(f"{workshop.url}/user001/")
    await page.wait_for_function("() => window.app && window.app.graph", timeout=120_000)
    # A first visit opens the first published workflow (the extension does, once the page has
    # started): wait for it, so that it does not land on top of the browser.
    await page.wait_for_function(ACTIVE, arg="workflows/Workshop/Step 1.json", timeout=30_000)
    await page.evaluate("() => app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    await page.locator("[data-testid=template-workflows-content]").wait_for(timeout=30_000)

    # The side bar: All, Popular, then the workshop's own category before ComfyUI's.
    nav = page.get_by_role("navigation").filter(has_text="All Templates")
    await nav.get_by_text("Workshop", exact=True).wait_for(timeout=30_000)
    entries = (await nav.inner_text()).split("\n")
    assert entries.index("Workshop") < entries.index("Image"), entries
    await nav.get_by_text("Workshop", exact=True).click()
    card = page.locator("[data-testid='template-workflow-Step 1']")
    await card.wait_for(timeout=10_000)
    assert await page.locator(CARDS).count() == 1
    await page.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-testid='template-workflow-Step 1'] img\")]"
        ".some(i => i.complete && i.naturalWidth > 0)",
        timeout=10_000,
    )

    # All templates: ComfyUI's official ones are there too, with their pictures.
    await nav.get_by_text("All Templates", exact=True).click()
    await page.wait_for_function(f'() => document.querySelectorAll("{CARDS}").length > 8')
    shown = await page.eval_on_selector_all(CARDS, "cards => cards.map(c => c.dataset.testid)")
    names = {s.removeprefix("template-workflow-") for s in shown}
    assert "Step 1" in names and len(names & official_names()) >= 8, shown
    await page.wait_for_function(
        f'() => [...document.querySelectorAll("{CARDS} img")].slice(0, 8)'
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=20_000,
    )

    # Opening the workshop's card puts its graph on the canvas.
    await nav.get_by_text("Workshop", exact=True).click()
    await card.click()
    await page.wait_for_function(ACTIVE, arg="workflows/Step 1.json", timeout=30_000)
    types = await page.evaluate("() => app.graph.nodes.map(n => n.type).sort()")
    assert types == sorted(n["type"] for n in json.loads(UI)["nodes"])
    assert [e for e in log.errors if "/templates/" in e] == []
    await context.close()
