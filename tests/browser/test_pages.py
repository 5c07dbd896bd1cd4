"""The real ComfyUI page (frontend 1.58.1) in headless Chromium, against a whole local
workshop started as `comfy-workshop up` starts it (simulated GPU, no step delay)."""

from __future__ import annotations

import contextlib
import json
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.async_api import Browser

from tests.support.frontends import older_frontend
from tests.support.pages import Frames, PageLog, load_default_graph, logged_in, open_page, run
from tests.support.waiting import until
from tests.support.workshop import Workshop, start_workshop, stop_workshop

# Whole workshops driven in Chromium: tens of seconds each here, more on a slow machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("pages"))
    try:
        yield running
    finally:
        stop_workshop(proc)


async def test_the_page_loads_for_its_owner_with_no_failed_requests(
    browser: Browser,
    workshop: Workshop,
) -> None:
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    log = PageLog()
    log.watch(page, workshop.url)
    await open_page(page, workshop, "user001")
    # Real ComfyUI answers 404 to a first visit's user.css, empty folders and template logos
    # (PROTOCOL.md section 11); we answer them all, so nothing at all fails.
    assert log.errors == [], "\n".join(log.errors)
    assert await page.evaluate("() => app.extensions.some(e => e.name === 'comfy.workshop')"), (
        "the workshop extension did not register"
    )
    assert await page.locator("#cw-status").count() == 1
    # Someone else's page is a plain 404; logged out, the page asks for a login.
    other = await page.goto(f"{workshop.url}/user002/")
    assert other is not None and other.status == 404
    await context.close()
    anonymous = await browser.new_context()
    page = await anonymous.new_page()
    await page.goto(f"{workshop.url}/user001/")
    assert "/login" in page.url
    await anonymous.close()


async def test_run_shows_progress_then_the_image_and_a_second_participant_sees_none_of_it(
    browser: Browser,
    workshop: Workshop,
) -> None:
    alice_ctx = await logged_in(browser, workshop, "user001")
    bob_ctx = await logged_in(browser, workshop, "user002")
    alice, bob = await alice_ctx.new_page(), await bob_ctx.new_page()
    alice_frames, bob_frames = Frames(alice), Frames(bob)
    log = PageLog()
    log.watch(alice, workshop.url)
    await open_page(alice, workshop, "user001")
    await open_page(bob, workshop, "user002")
    await load_default_graph(alice)

    async with alice.expect_response(
        lambda r: "/user001/api/view?" in r.url and "type=output" in r.url, timeout=60_000
    ) as image:
        prompt_id = await run(alice)
    shown = await image.value
    assert shown.status == 200
    assert shown.headers["content-type"] == "image/png"
    # The page asks for the image as soon as `executed` comes (the workshop extension redraws
    # then), which may be before the job's last messages: wait for those.
    await until(lambda: "execution_success" in alice_frames.about(prompt_id))
    about = alice_frames.about(prompt_id)
    assert "progress" in about and "executed" in about and "execution_success" in about
    assert alice_frames.binary > 0  # sampler previews
    # The image is on the SaveImage node and in the queue panel.
    await alice.wait_for_function(
        """() => {
            const save = app.graph.nodes.find(n => n.type === 'SaveImage');
            const out = app.nodeOutputs?.[String(save.id)] ?? save.images;
            return !!(out && (out.images ?? out).length);
        }""",
        timeout=10_000,
    )
    await alice.click("[data-testid=queue-overlay-toggle]")
    await alice.wait_for_selector("img[src*='/user001/api/view']", timeout=10_000)
    assert log.errors == [], "\n".join(log.errors)

    # Bob's page heard nothing about Alice's job, and his API does not know it.
    assert prompt_id not in json.dumps(bob_frames.messages)
    jobs = await bob.evaluate(
        "async () => (await (await fetch('api/jobs')).json()).jobs.map(j => j.id)"
    )
    assert prompt_id not in jobs
    await alice_ctx.close()
    await bob_ctx.close()


def tiny_png(path: Path) -> Path:
    """An 8x8 red PNG, written without an image library (the page uploads it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 8 for _ in range(8))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


async def test_an_uploaded_image_runs_through_load_image(
    browser: Browser,
    workshop: Workshop,
    tmp_path: Path,
) -> None:
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    await open_page(page, workshop, "user001")
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "up"}},
    }
    await page.evaluate("(wf) => app.loadApiJson(wf, 'upload test')", workflow)
    # The LoadImage node's "choose file to upload" button opens a file chooser.
    async with page.expect_response(lambda r: r.url.endswith("/api/upload/image")) as upload:
        async with page.expect_file_chooser() as chooser:
            await page.evaluate(
                "() => app.graph.nodes.find(n => n.type === 'LoadImage')"
                ".widgets.find(w => w.name === 'upload').callback()"
            )
        await (await chooser.value).set_files(tiny_png(tmp_path / "red square.png"))
    assert (await upload.value).status == 200
    await page.wait_for_function(
        "() => app.graph.nodes.find(n => n.type === 'LoadImage')"
        ".widgets.find(w => w.name === 'image').value === 'red square.png'",
        timeout=10_000,
    )
    async with page.expect_response(
        lambda r: "/api/view?" in r.url and "filename=up_" in r.url, timeout=60_000
    ) as image:
        await run(page)
    assert (await image.value).status == 200
    stored = workshop.data / "inputs" / "user001" / "red square.png"
    assert stored.is_file()
    assert list((workshop.data / "outputs" / "user001").glob("up_*.png"))
    await context.close()


@pytest.fixture(scope="module")
def slow_workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    """A GPU that takes 0.1 s per sampler step, so a job can be caught running."""
    proc, running = start_workshop(tmp_path_factory.mktemp("slow"), step_delay=0.1)
    try:
        yield running
    finally:
        stop_workshop(proc)


@contextlib.contextmanager
def frozen_gpus(workshop: Workshop) -> Iterator[None]:
    """The workshop's simulated GPUs stopped (SIGSTOP) for the block, then let go on."""
    marker = str(workshop.data / "simulators")
    sims = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "worker.simulator" in (p.info["cmdline"] or []) and marker in " ".join(p.info["cmdline"])
    ]
    assert sims, f"no simulator of {workshop.data} found"
    for sim in sims:
        sim.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for sim in sims:
            sim.send_signal(signal.SIGCONT)


async def job_status(workshop: Workshop, user: str, prompt_id: str) -> str:
    async with httpx.AsyncClient(
        base_url=workshop.url, auth=(user, workshop.passwords[user])
    ) as client:
        status: str = (await client.get(f"/{user}/api/jobs/{prompt_id}")).json()["status"]
        return status


async def test_cancel_from_the_ui_stops_the_running_job(
    browser: Browser,
    slow_workshop: Workshop,
) -> None:
    context = await logged_in(browser, slow_workshop, "user001")
    page = await context.new_page()
    frames = Frames(page)
    await open_page(page, slow_workshop, "user001")
    await load_default_graph(page, steps=200)
    prompt_id = await run(page)
    await page.wait_for_function(
        "() => document.querySelector('#cw-phase')?.textContent.includes('Running')",
        timeout=20_000,
    )
    await page.click("button[aria-label='Cancel current run']")
    await page.wait_for_function(
        "() => !document.querySelector('#cw-phase')?.textContent.includes('Running')",
        timeout=20_000,
    )
    assert await job_status(slow_workshop, "user001", prompt_id) == "cancelled"
    assert "execution_interrupted" in frames.about(prompt_id)
    await context.close()


async def test_the_page_works_after_a_reload_mid_job(
    browser: Browser,
    slow_workshop: Workshop,
) -> None:
    context = await logged_in(browser, slow_workshop, "user001")
    page = await context.new_page()
    await open_page(page, slow_workshop, "user001")
    await load_default_graph(page, steps=150)  # 15 s on this GPU: still running after reload
    client_id = await page.evaluate("() => sessionStorage.getItem('clientId')")
    prompt_id = await run(page)
    await page.wait_for_function(
        "() => document.querySelector('#cw-phase')?.textContent.includes('Running')",
        timeout=20_000,
    )
    frames = Frames(page)
    # The GPU holds still while the page reloads (however long that takes on a busy machine),
    # so the job is surely still running when the reloaded page asks where it is.
    with frozen_gpus(slow_workshop):
        await page.reload()
        await page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
        assert await page.evaluate("() => sessionStorage.getItem('clientId')") == client_id
        # The reloaded page is told where the run is, follows it, and shows the result.
        await page.wait_for_function(
            "() => document.querySelector('#cw-phase')?.textContent.includes('Running')",
            timeout=20_000,
        )
    async with page.expect_response(
        lambda r: "/api/view?" in r.url and "type=output" in r.url, timeout=60_000
    ) as image:
        pass
    assert (await image.value).status == 200
    # The image is asked for at `executed`, which may come before the job's last messages.
    await until(lambda: "execution_success" in frames.about(prompt_id))
    about = frames.about(prompt_id)
    assert "progress" in about and "execution_success" in about, about
    assert await job_status(slow_workshop, "user001", prompt_id) == "completed"
    await context.close()


async def test_an_older_frontend_that_polls_queue_and_history_works(
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    static = older_frontend()
    if static is None:
        pytest.skip("no older frontend: set CW_TEST_FRONTEND_DIR or let pip reach an index")
    proc, workshop = start_workshop(
        tmp_path_factory.mktemp("older"), env={"CW_FRONTEND_DIR": str(static)}
    )
    try:
        context = await logged_in(browser, workshop, "user001")
        page = await context.new_page()
        frames = Frames(page)
        polled: list[str] = []
        page.on("request", lambda r: polled.append(r.url) if "/api/history" in r.url else None)
        await open_page(page, workshop, "user001")
        await load_default_graph(page)
        async with page.expect_response(lambda r: r.url.endswith("/api/prompt")) as answer:
            await page.keyboard.press("Control+Enter")  # Queue Prompt
        prompt_id = (await (await answer.value).json())["prompt_id"]
        await page.wait_for_function(
            """() => {
                const save = app.graph.nodes.find(n => n.type === 'SaveImage');
                return !!app.nodeOutputs?.[String(save.id)]?.images?.length;
            }""",
            timeout=60_000,
        )
        # The image shows on `executed`; `execution_success` is the frame after it.
        for _ in range(300):
            if "execution_success" in frames.about(prompt_id):
                break
            await page.wait_for_timeout(100)
        assert "execution_success" in frames.about(prompt_id)
        assert polled, "the older page reads /api/history"
        await context.close()
    finally:
        stop_workshop(proc)
