"""A participant's Run served by a push endpoint only (`up --workers 0 --endpoint URL`): the
real ComfyUI page in headless Chromium shows the run's progress and then its image."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from queue_manager.cli.redis_server import free_port
from tests.support.pages import Frames, load_default_graph, logged_in, open_page, run
from tests.support.waiting import until
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def start_simulator(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ComfyUI simulator in its own process, as a GPU box the queue manager calls."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.simulator", "--port", str(port), "--data", str(data),
         "--step-delay", "0.02"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/system_stats", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the simulator did not start")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    base = tmp_path_factory.mktemp("endpoint")
    sim, url = start_simulator(base / "sim")
    try:
        proc, running = start_workshop(
            base / "data", workers=0, extra=("--endpoint", f"{url},name=box")
        )
        try:
            yield running
        finally:
            stop_workshop(proc)
    finally:
        sim.kill()
        sim.wait()


async def test_a_run_on_an_endpoint_only_shows_progress_then_the_image(
    browser: Browser, workshop: Workshop
) -> None:
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    frames = Frames(page)
    await open_page(page, workshop, "user001")
    await load_default_graph(page)
    async with page.expect_response(
        lambda r: "/user001/api/view?" in r.url and "type=output" in r.url, timeout=90_000
    ) as image:
        prompt_id = await run(page)
    shown = await image.value
    assert shown.status == 200
    assert shown.headers["content-type"] == "image/png"
    # The image is asked for at `executed`, which may come before the job's last messages.
    await until(lambda: "execution_success" in frames.about(prompt_id))
    about = frames.about(prompt_id)
    assert "progress" in about and "executed" in about and "execution_success" in about
    assert list((workshop.data / "outputs/user001").rglob("*.png"))
    await context.close()


async def test_the_dashboard_shows_the_endpoint_with_its_state(
    browser: Browser, workshop: Workshop
) -> None:
    context = await logged_in(browser, workshop, "instructor", home="/admin/")
    page = await context.new_page()
    await page.goto(f"{workshop.url}/admin/")
    row = page.locator("[data-testid=endpoints-list] tr[data-endpoint=box]")
    await row.wait_for(timeout=30_000)
    await page.wait_for_function(
        """() => /ready|busy/.test(document.querySelector(
            "[data-testid=endpoints-list] tr[data-endpoint=box] .badge")?.textContent ?? "")""",
        timeout=30_000,
    )
    assert "comfyui" in await row.inner_text()
    assert await page.locator("#endpoints-empty").is_hidden()
    # Its slot is a worker of the room too.
    await page.locator("[data-testid=workers-list] [data-worker-id='box.1']").wait_for()
    await context.close()


async def test_the_instructor_adds_and_removes_an_endpoint_on_the_dashboard(
    browser: Browser, workshop: Workshop
) -> None:
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=("instructor", workshop.passwords["instructor"])
    ) as client:
        [box] = (await client.get("/admin/api/endpoints")).json()
    context = await logged_in(browser, workshop, "instructor", home="/admin/")
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{workshop.url}/admin/")
    form = page.locator("[data-testid=endpoint-form]")
    await form.locator("[name=name]").fill("spare")
    await form.locator("[name=url]").fill(box["url"])
    await form.locator("[name=slots]").fill("2")
    await form.locator("[name=header]").fill("X-Api-Key: sekrit-value")
    await form.locator("[name=prefetch]").check()
    await page.click("[data-testid=endpoint-add]")
    row = page.locator("[data-testid=endpoints-list] tr[data-endpoint=spare]")
    await row.wait_for(timeout=30_000)
    assert "next waits" in await row.inner_text()
    assert "sekrit-value" not in await page.content()  # a header's value is never shown back
    await row.locator("[data-action=remove-endpoint]").click()
    await row.wait_for(state="detached", timeout=30_000)
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=("instructor", workshop.passwords["instructor"])
    ) as client:
        assert [e["name"] for e in (await client.get("/admin/api/endpoints")).json()] == ["box"]
    await context.close()
