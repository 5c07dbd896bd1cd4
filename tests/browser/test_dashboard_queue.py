"""The dashboard's queue rows and worker controls in headless Chromium, on a whole local
workshop (one simulated GPU at 0.1 s per sampler step): a paused queue keeps its positions and
estimates, so "To front" visibly moves a job; a drained worker is undrained with one click."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser

from tests.support.graphs import sampler
from tests.support.pages import open_dashboard
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("dashq"), step_delay=0.1)
    try:
        yield running
    finally:
        stop_workshop(proc)


async def submit(workshop: Workshop, user: str, steps: int = 4) -> str:
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=(user, workshop.passwords[user]), timeout=30
    ) as client:
        r = await client.post(f"/{user}/api/prompt", json={"prompt": sampler(steps)})
        assert r.status_code == 200, r.text
        job_id: str = r.json()["prompt_id"]
        return job_id


async def status(workshop: Workshop, user: str, job_id: str) -> str:
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=(user, workshop.passwords[user]), timeout=30
    ) as client:
        found: str = (await client.get(f"/{user}/api/jobs/{job_id}")).json()["status"]
        return found


async def until_done(workshop: Workshop, user: str, job_id: str) -> None:
    for _ in range(600):
        if await status(workshop, user, job_id) == "completed":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id} did not complete")


def row(job_id: str) -> str:
    return f"[data-testid=queue-list] [data-job-id='{job_id}']"


async def test_a_paused_queue_shows_positions_and_to_front_visibly_moves_a_job(
    browser: Browser, workshop: Workshop
) -> None:
    admin = await open_dashboard(browser, workshop)
    await admin.click("[data-testid=pause-btn]")
    await admin.wait_for_selector("[data-testid=room-status]:has-text('PAUSED')")
    first = await submit(workshop, "user001")
    second = await submit(workshop, "user002")
    await admin.wait_for_selector(f"{row(second)} td.pos:has-text('#2')", timeout=30_000)
    assert await admin.text_content(f"{row(first)} td.pos") == "#1"
    assert "after resume" in (await admin.text_content(f"{row(second)} td.eta") or "")
    assert await admin.text_content(f"{row(second)} td.why") == "queue paused"

    await admin.click(f"{row(second)} [data-action=front]")
    await admin.wait_for_selector(f"{row(second)} td.pos:has-text('#1')", timeout=30_000)
    assert await admin.text_content(f"{row(first)} td.pos") == "#2"

    await admin.click("[data-testid=resume-btn]")
    await until_done(workshop, "user002", second)
    await until_done(workshop, "user001", first)
    await admin.context.close()


async def test_a_drained_worker_is_undrained_from_the_dashboard(
    browser: Browser, workshop: Workshop
) -> None:
    admin = await open_dashboard(browser, workshop)
    worker = admin.locator("[data-testid=workers-list] [data-worker-id]").first
    await worker.locator("[data-action=drain]").click()
    await worker.locator(".badge:has-text('draining')").wait_for(timeout=30_000)
    assert not await worker.locator("[data-action=drain]").is_visible()
    job_id = await submit(workshop, "user001")
    await admin.wait_for_selector(row(job_id), timeout=30_000)
    assert await status(workshop, "user001", job_id) == "pending"  # the only GPU takes nothing

    await worker.locator("[data-action=undrain]").click()
    await worker.locator(".badge:has-text('online')").wait_for(timeout=30_000)
    await until_done(workshop, "user001", job_id)
    assert await worker.locator("[data-action=drain]").is_visible()
    assert not await worker.locator("[data-action=undrain]").is_visible()
    await admin.context.close()
