"""A whole local workshop as `comfy-workshop up` starts it (private Redis, the queue manager,
simulated GPU workers), and headless Chromium pages logged in to it.

Chromium is Debian's (`/usr/bin/chromium`), driven by Python playwright; no browser is ever
downloaded. `.ci/run` installs it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    async_playwright,
)

from queue_manager.cli.redis_server import free_port

CHROMIUM = os.environ.get("CW_TEST_CHROMIUM", "/usr/bin/chromium")


@dataclass
class Workshop:
    url: str
    data: Path
    passwords: dict[str, str]
    log: Path


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


def start_workshop(
    data: Path,
    users: int = 2,
    workers: int = 1,
    step_delay: float = 0.0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Workshop]:
    port = free_port()
    log = data / "up.log"
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "queue_manager",
                "up",
                "--port",
                str(port),
                "--data",
                str(data),
                "--users",
                str(users),
                "--workers",
                str(workers),
                "--step-delay",
                str(step_delay),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"comfy-workshop up did not start:\n{log.read_text()}")
        time.sleep(0.1)
    rows = csv.DictReader((data / "credentials.csv").open())
    passwords = {r["user"]: r["password"] for r in rows}
    return proc, Workshop(url, data, passwords, log)


def stop_workshop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _check_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    _check_chromium()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            await b.close()


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
