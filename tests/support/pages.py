"""Headless Chromium pages on a local workshop: logged in, watched for failed requests and for
the frames of their ComfyUI socket, and driven as a participant drives them.

Chromium is Debian's (`/usr/bin/chromium`), driven by Python playwright; no browser is ever
downloaded. `.ci/run` installs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Response, WebSocket

from queue_manager.rehearsal.browser import close_dialogs  # the rehearsal's pages do the same
from tests.support.workshop import Workshop

CHROMIUM = os.environ.get("CW_TEST_CHROMIUM", "/usr/bin/chromium")


def check_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")


@dataclass
class PageLog:
    """Every answer from our server with a status >= 400, and requests that failed."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page, base: str) -> None:
        answered: set[int] = set()

        def on_response(response: Response) -> None:
            answered.add(id(response.request))
            if response.url.startswith(base) and response.status >= 400:
                self.errors.append(f"{response.status} {response.request.method} {response.url}")

        def on_failed(request: Request) -> None:
            # Chromium also reports requests it answered but whose body the page never read
            # (a 404 stylesheet, ComfyUI's empty 200s) as ERR_ABORTED: those count by status.
            if request.url.startswith(base) and id(request) not in answered:
                self.errors.append(f"failed {request.method} {request.url} {request.failure}")

        page.on("response", on_response)
        page.on("requestfailed", on_failed)


async def logged_in(
    browser: Browser, workshop: Workshop, user: str, home: str | None = None
) -> BrowserContext:
    """A browser context (its own cookies and storage) logged in as `user`, offline from the
    internet (the page's release-notes and model checks are aborted, as in the captures)."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})

    async def block_external(route: object) -> None:
        await route.abort()  # type: ignore[attr-defined]

    await context.route(lambda url: not url.startswith(workshop.url), block_external)
    page = await context.new_page()
    home = home or f"/{user}/"
    await page.goto(f"{workshop.url}/login?next={home}")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", workshop.passwords[user])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{workshop.url}{home}")
    await page.close()
    return context


async def open_dashboard(browser: Browser, workshop: Workshop) -> Page:
    """The instructor's dashboard, logged in, once its socket is live."""
    context = await logged_in(browser, workshop, "instructor", home="/admin/")
    page = await context.new_page()
    await page.goto(f"{workshop.url}/admin/")
    await page.wait_for_selector("[data-testid=conn-status]:has-text('live')", timeout=30_000)
    return page


class Frames:
    """The JSON messages a page's ComfyUI socket received."""

    def __init__(self, page: Page) -> None:
        self.messages: list[dict[str, Any]] = []
        self.binary = 0
        page.on("websocket", self._watch)

    def _watch(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.binary += 1
        else:
            self.messages.append(json.loads(payload))

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def about(self, prompt_id: str) -> list[str]:
        return [
            m["type"]
            for m in self.messages
            if isinstance(m.get("data"), dict) and m["data"].get("prompt_id") == prompt_id
        ]


async def open_page(page: Page, workshop: Workshop, user: str) -> None:
    await page.goto(f"{workshop.url}/{user}/")
    await page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
    await page.wait_for_load_state("networkidle")
    await page.keyboard.press("Escape")  # the first visit's template browser


async def load_default_graph(page: Page, steps: int = 4) -> None:
    """The frontend's own default workflow, with a fresh seed (a repeated prompt would be
    served from ComfyUI's cache)."""
    await page.evaluate(
        """async (steps) => {
            await app.loadGraphData();
            const k = app.graph.nodes.find(n => n.type === 'KSampler');
            k.widgets.find(w => w.name === 'seed').value = Math.floor(Math.random() * 1e9);
            k.widgets.find(w => w.name === 'steps').value = steps;
        }""",
        steps,
    )
    await page.keyboard.press("Escape")


async def run(page: Page) -> str:
    """Click Run; returns the prompt id the server gave."""
    await close_dialogs(page)
    async with page.expect_response(lambda r: r.url.endswith("/api/prompt")) as answer:
        await page.click("button[data-testid='queue-button']")
    response = await answer.value
    assert response.status == 200, await response.text()
    prompt_id: str = (await response.json())["prompt_id"]
    return prompt_id
