"""The instructor's dashboard in headless Chromium, beside a participant's real ComfyUI page,
on a whole local workshop (one simulated GPU at 0.1 s per sampler step)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser

from tests.support.graphs import sampler
from tests.support.pages import (
    Frames,
    load_default_graph,
    logged_in,
    open_dashboard,
    open_page,
    run,
)
from tests.support.workshop import Workshop, start_workshop, stop_workshop

# Whole workshops driven in Chromium: tens of seconds each here, more on a slow machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("dashboard"), step_delay=0.1)
    try:
        yield running
    finally:
        stop_workshop(proc)


async def api(workshop: Workshop, user: str, path: str) -> dict[str, object]:
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=(user, workshop.passwords[user])
    ) as client:
        r = await client.get(path)
        r.raise_for_status()
        found: dict[str, object] = r.json()
        return found


async def test_a_participants_job_appears_live_and_the_instructor_cancels_it(
    browser: Browser,
    workshop: Workshop,
) -> None:
    admin = await open_dashboard(browser, workshop)
    participant_ctx = await logged_in(browser, workshop, "user001")
    page = await participant_ctx.new_page()
    frames = Frames(page)
    await open_page(page, workshop, "user001")
    await load_default_graph(page, steps=300)  # 30 s: it will be cancelled long before
    prompt_id = await run(page)

    row = admin.locator(f"[data-testid=running-list] [data-job-id='{prompt_id}']")
    await row.wait_for(timeout=30_000)
    admin.once("dialog", lambda d: d.accept())
    await row.locator("[data-action=cancel]").click()

    await page.wait_for_function(
        "() => document.querySelector('#cw-phase')?.textContent.includes('Cancelled')",
        timeout=30_000,
    )
    job = await api(workshop, "user001", f"/user001/api/jobs/{prompt_id}")
    assert job["status"] == "cancelled"
    assert "execution_interrupted" in frames.about(prompt_id)
    await admin.context.close()
    await participant_ctx.close()


async def test_a_broadcast_appears_in_every_participants_page(
    browser: Browser,
    workshop: Workshop,
) -> None:
    admin = await open_dashboard(browser, workshop)
    pages = []
    for user in ("user001", "user002"):
        context = await logged_in(browser, workshop, user)
        page = await context.new_page()
        await open_page(page, workshop, user)
        pages.append(page)
    await admin.fill("[data-testid=broadcast-input]", "Coffee break until 11:00")
    await admin.click("[data-testid=broadcast-send]")
    for page in pages:
        await page.wait_for_function(
            "() => document.querySelector('#cw-broadcast')?.textContent"
            ".includes('Coffee break until 11:00')",
            timeout=30_000,
        )
    await admin.click("[data-testid=broadcast-clear]")
    for page in pages:
        await page.wait_for_function(
            "() => { const b = document.querySelector('#cw-broadcast');"
            " return !b || b.hidden || !b.textContent.trim(); }",
            timeout=30_000,
        )
        await page.context.close()
    await admin.context.close()


async def test_a_drained_worker_finishes_its_job_and_takes_no_more(
    browser: Browser,
    workshop: Workshop,
) -> None:
    admin = await open_dashboard(browser, workshop)
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=("user002", workshop.passwords["user002"])
    ) as bob:
        prompt = sampler(steps=40)
        first = (await bob.post("/user002/api/prompt", json={"prompt": prompt})).json()
        prompt["3"]["inputs"]["seed"] += 1
        second = (await bob.post("/user002/api/prompt", json={"prompt": prompt})).json()
        worker_row = admin.locator("[data-testid=workers-list] [data-worker-id]").first
        await admin.locator(
            f"[data-testid=running-list] [data-job-id='{first['prompt_id']}']"
        ).wait_for(timeout=30_000)
        await worker_row.locator("[data-action=drain]").click()
        for _ in range(600):
            done = (await bob.get(f"/user002/api/jobs/{first['prompt_id']}")).json()
            if done["status"] == "completed":
                break
            await admin.wait_for_timeout(100)
        assert done["status"] == "completed"
        state = await api(workshop, "instructor", "/admin/api/state")
        [worker] = state["workers"]  # type: ignore[misc]
        assert worker["state"] == "draining" and worker["job"] is None
        waiting = (await bob.get(f"/user002/api/jobs/{second['prompt_id']}")).json()
        assert waiting["status"] == "pending"
        # Resuming the worker lets it take the waiting job (clean up for other tests).
        await bob.post("/user002/api/queue", json={"clear": True})
    await admin.context.close()
