"""Stand-in participants in real headless Chromium pages: the login form, the participant's
ComfyUI page, the rehearsal's workflow loaded into it, Run pressed K times (a fresh seed each
time), and the time until the page itself has fetched each job's image (`/api/view`).

Debian's Chromium (`/usr/bin/chromium`, or CW_CHROMIUM), driven by playwright, which is the
optional `rehearse` extra: `pip install 'comfy-workshop[rehearse]'`. Never a downloaded browser.
Requests to other sites (the page's release-notes and model checks) are aborted, so a page on a
workshop without internet behaves as on the day.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from queue_manager.rehearsal.client import Login, WorkshopError
from queue_manager.rehearsal.participant import Plan, Say
from queue_manager.rehearsal.stats import JobRun, Problem

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Response, WebSocket

CHROMIUM = os.environ.get("CW_CHROMIUM", "/usr/bin/chromium")
PAGE_TIMEOUT_MS = 90_000  # loading the page (its many modules) on a slow machine
IMAGE_SHOWN_AFTER = 30.0  # seconds the page may take to fetch an image after the job ended
INSTALL = "pip install 'comfy-workshop[rehearse]'"

_SEEDS = """(seed) => {
    let n = 0;
    for (const node of app.graph.nodes) {
        for (const w of node.widgets || []) {
            if (w.name === 'seed' || w.name === 'noise_seed') { w.value = seed + n++; }
        }
    }
}"""
_LOAD = """async ([graph, prompt, name]) => {
    if (graph) { await app.loadGraphData(graph); } else { await app.loadApiJson(prompt, name); }
}"""


class BrowserMissing(WorkshopError):
    """The browser part cannot run here; the message says what to install."""


def check_browser() -> None:
    """BrowserMissing unless playwright and Chromium are here."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        raise BrowserMissing(
            f"--browsers needs playwright: {INSTALL} (and Debian's chromium: apt-get install "
            "chromium), or run with --browsers 0"
        ) from None
    if not Path(CHROMIUM).exists():
        raise BrowserMissing(
            f"--browsers needs Chromium at {CHROMIUM}: apt-get install chromium (or set "
            "CW_CHROMIUM), or run with --browsers 0"
        )


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Seen:
    """What the page's socket and requests showed, by prompt id and file name."""

    started: dict[str, float] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    ended: dict[str, str | None] = field(default_factory=dict)  # prompt id -> error or None
    viewed: dict[str, float] = field(default_factory=dict)  # file name -> when fetched
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            return
        message = json.loads(payload)
        data = message.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("prompt_id"), str):
            return
        kind, prompt_id = message.get("type"), data["prompt_id"]
        if kind == "execution_start":
            self.started[prompt_id] = time.time()
        elif kind == "executed":
            output = data.get("output") or {}
            self.files.setdefault(prompt_id, []).extend(
                str(i["filename"])
                for items in output.values() if isinstance(items, list)
                for i in items if isinstance(i, dict) and "filename" in i
            )  # fmt: skip
        elif kind == "execution_success":
            self.ended[prompt_id] = None
        elif kind in ("execution_error", "execution_interrupted"):
            self.ended[prompt_id] = str(data.get("exception_message") or kind).strip()[:300]
        self.changed.set()

    def response(self, response: Response) -> None:
        if "/api/view?" in response.url and response.status == 200:
            for part in response.url.split("?", 1)[1].split("&"):
                if part.startswith("filename="):
                    self.viewed.setdefault(unquote_plus(part[9:]), time.monotonic())
            self.changed.set()

    async def until(self, done: Any) -> None:
        while not done():
            self.changed.clear()
            await self.changed.wait()


class BrowserParticipant:
    def __init__(self, plan: Plan, login: Login, rng: random.Random, say: Say) -> None:
        self._plan = plan
        self._login = login
        self._user = self.user = login.name
        self._rng = rng
        self._say = say
        self._seen = Seen()
        self.problems: list[Problem] = []
        self.jobs: dict[int, JobRun] = {}  # as far as they got (a stop reads them)

    async def run(self, browser: Browser) -> list[JobRun]:
        base = self._plan.base
        context = await browser.new_context(viewport={"width": 1600, "height": 1000})
        try:
            await context.route(lambda url: not url.startswith(base), _abort)
            page = await context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.on("websocket", self._watch)
            page.on("response", self._seen.response)
            await self._open(page)
            jobs = [await self._run_once(page, n) for n in range(1, self._plan.jobs + 1)]
            await asyncio.gather(*(self._finish(j) for j in jobs))
            return [self.jobs[n] for n in sorted(self.jobs)]
        finally:
            await context.close()

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framereceived", self._seen.frame)

    async def _open(self, page: Page) -> None:
        home = f"/{self._user}/"
        self._say(self._user, "opening the page")
        await page.goto(f"{self._plan.base}/login?next={home}")
        await page.fill("input[name=username]", self._user)
        await page.fill("input[name=password]", self._login.password)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{self._plan.base}{home}")
        await page.wait_for_function("() => window.app && window.app.graph")
        await close_dialogs(page)
        workflow = self._plan.workflow
        await page.evaluate(_LOAD, [workflow.graph, workflow.prompt, workflow.name])
        await close_dialogs(page)

    async def _run_once(self, page: Page, number: int) -> JobRun:
        await page.evaluate(_SEEDS, self._rng.randrange(2**40))
        await close_dialogs(page)
        job = JobRun(self._user, number, "browser", submitted=time.monotonic(), queued=time.time())
        async with page.expect_response(lambda r: r.url.endswith("/api/prompt")) as answer:
            await page.click("button[data-testid='queue-button']")
        response = await answer.value
        if response.status != 200:
            return self._failed(job, "refused", f"Run {number}: HTTP {response.status}")
        self._say(self._user, f"queued {number}/{self._plan.jobs}")
        return self._keep(replace(job, prompt_id=str((await response.json())["prompt_id"])))

    async def _finish(self, job: JobRun) -> JobRun:
        prompt_id, seen = job.prompt_id, self._seen
        if job.problem is not None or prompt_id is None:
            return job
        try:
            async with asyncio.timeout(self._plan.timeout):
                await seen.until(lambda: prompt_id in seen.ended)
        except TimeoutError:
            return self._failed(job, "timeout", f"job {job.number}: no image after "
                                f"{self._plan.timeout:.0f} s")  # fmt: skip
        job = self._keep(replace(job, started=seen.started.get(prompt_id)))
        if (error := seen.ended[prompt_id]) is not None:
            return self._failed(job, "failed", f"job {job.number}: {error}")
        files = seen.files.get(prompt_id, [])
        if not files:
            return self._failed(job, "no image", f"job {job.number}: finished without a file")
        try:
            async with asyncio.timeout(IMAGE_SHOWN_AFTER):
                await seen.until(lambda: any(f in seen.viewed for f in files))
        except TimeoutError:
            return self._failed(job, "not shown", f"job {job.number}: the page did not fetch "
                                "its image")  # fmt: skip
        self._say(self._user, f"image {job.number}/{self._plan.jobs}", image=True)
        shown = min(seen.viewed[f] for f in files if f in seen.viewed)
        return self._keep(replace(job, image=shown))

    def _keep(self, job: JobRun) -> JobRun:
        self.jobs[job.number] = job
        return job

    def _failed(self, job: JobRun, kind: str, message: str) -> JobRun:
        self._say(self._user, f"{kind}: {message}", problem=True)
        return self._keep(replace(job, problem=Problem(kind, self._user, message)))


async def _abort(route: Any) -> None:
    await route.abort()


async def close_dialogs(page: Page) -> None:
    """Escape whatever dialog is open (the first visit's template browser opens late)."""
    overlay = page.locator("[data-testid=dialog-overlay]")
    for _ in range(50):
        if not await overlay.count() or not await overlay.first.is_visible():
            return
        await page.keyboard.press("Escape")
        await page.wait_for_timeout(100)
