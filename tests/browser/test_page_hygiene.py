"""A fresh participant's page asks nothing the server cannot answer and calls no one else:
no console errors, no failed or 4xx/5xx answers, and no request to any host but the workshop's
(a workshop network may be offline or private). Chromium at 1920x1080, as a participant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response, Route

from tests.support.frontends import OLDER_VERSION, older_frontend
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=["pinned", OLDER_VERSION])
def workshop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workshop]:
    """A workshop serving the pinned frontend, then one serving the older one."""
    env = {}
    if request.param == OLDER_VERSION:
        static = older_frontend()
        if static is None:
            pytest.skip("no older frontend: set CW_TEST_FRONTEND_DIR or let pip reach an index")
        env["CW_FRONTEND_DIR"] = str(static)
    proc, running = start_workshop(tmp_path_factory.mktemp("hygiene"), env=env)
    try:
        yield running
    finally:
        stop_workshop(proc)


@dataclass
class Record:
    """Everything a page did wrong, as lines a person can read."""

    base: str
    console: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        answered: set[int] = set()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.console.append(f"{message.text} ({message.location.get('url', '')})")

        def on_response(response: Response) -> None:
            answered.add(id(response.request))
            if response.status >= 400:
                self.answers.append(f"{response.status} {response.request.method} {response.url}")

        def on_failed(request: Request) -> None:
            # Chromium reports a request whose body the page never read as ERR_ABORTED even
            # when it was answered: those count by their status (on_response).
            if id(request) not in answered and request.url.startswith(self.base):
                self.failed.append(f"{request.method} {request.url} {request.failure}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))
        page.on("response", on_response)
        page.on("requestfailed", on_failed)

    def problems(self) -> list[str]:
        return self.console + self.answers + self.failed + self.elsewhere


async def test_a_fresh_participants_page_is_clean_and_stays_home(
    browser: Browser, workshop: Workshop
) -> None:
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    record = Record(workshop.url)

    async def away(route: Route) -> None:
        record.elsewhere.append(f"{route.request.method} {route.request.url}")
        await route.abort()

    # Every request to another host is written down and never leaves this machine.
    await context.route(lambda url: not url.startswith(workshop.url), away)
    page = await context.new_page()
    record.watch(page)
    await page.goto(f"{workshop.url}/login?next=/user001/")
    await page.fill("input[name=username]", "user001")
    await page.fill("input[name=password]", workshop.passwords["user001"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{workshop.url}/user001/")
    await page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
    await page.wait_for_load_state("networkidle")
    assert record.problems() == [], "\n".join(record.problems())
    # What keeps it home if a setting is missed; the page's own socket still gets through.
    policy = (await page.request.get(f"{workshop.url}/user001/")).headers
    assert policy["content-security-policy"] == "connect-src 'self' blob: data:"
    await page.wait_for_function("() => app.api.socket && app.api.socket.readyState === 1")
    # The workshop's defaults: no template browser over the first graph.
    assert await page.evaluate(
        "() => app.extensionManager.setting.get('Comfy.TutorialCompleted')"
    ), "Comfy.TutorialCompleted is not set for a new participant"
    assert not await page.locator("[data-testid=dialog-overlay]").is_visible()
    # A call home that no setting switched off never leaves the browser.
    tried = await page.evaluate(
        "() => fetch('https://api.comfy.org/releases').then(() => 'sent', () => 'refused')"
    )
    assert (tried, record.elsewhere) == ("refused", [])
    await context.close()
