"""Taking work home, in Chromium (1920x1080) on a whole local workshop: a participant's
"Download my work (.zip)" and the instructor's "Export the room (.zip)"."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.support.frontends import older_frontend
from tests.support.pages import close_dialogs, logged_in, open_page
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LABEL = "Download my work (.zip)"
# Below DATA -> the name in user001's zip (None: not hers, or not work).
FILES: dict[str, str | None] = {
    "outputs/user001/ComfyUI_00001_.png": "outputs/ComfyUI_00001_.png",
    "outputs/user001/clips/clip.mp4": "outputs/clips/clip.mp4",
    "inputs/user001/photo.jpg": "inputs/photo.jpg",
    "userdata/user001/workflows/mine.json": "workflows/mine.json",
    "outputs/user002/bob.png": None,
    "inputs/user002/bob.jpg": None,
    "userdata/user002/workflows/bob.json": None,
}


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("export"))
    try:
        for rel in FILES:
            path = running.data / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"bytes of {rel}".encode())
        yield running
    finally:
        stop_workshop(proc)


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return {name: z.read(name) for name in z.namelist()}


async def test_download_my_work_gives_exactly_the_participants_files(
    browser: Browser, workshop: Workshop, tmp_path: Path
) -> None:
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    await open_page(page, workshop, "user001")
    # Frontend 1.58.1 has a top bar for extensions' buttons: the control is there, beside Run,
    # and the fallback button (for frontends without one) is not added.
    await page.wait_for_selector("html[data-cw-export]", state="attached", timeout=30_000)
    assert await page.get_attribute("html", "data-cw-export") == "bar"
    assert await page.locator("#cw-export").count() == 0
    # By its label (its role is hidden from the accessibility tree while a dialog is open).
    button = page.locator(f'[data-testid=action-bar-buttons] button[aria-label="{LABEL}"]')
    await button.wait_for(state="visible", timeout=30_000)
    await close_dialogs(page)  # a first visit's template browser, if it opened
    async with page.expect_download(timeout=30_000) as started:
        await button.click()
    download = await started.value
    assert download.suggested_filename.startswith("user001-workshop-")
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert entries(saved) == {
        name: f"bytes of {rel}".encode() for rel, name in FILES.items() if name
    }
    # The same is in the File menu, as a command of the frontend.
    commands = await page.evaluate("() => app.extensionManager.command.commands.map(c => c.id)")
    assert "Workshop.DownloadMyWork" in commands
    await context.close()


async def test_the_instructor_exports_the_room_from_the_dashboard(
    browser: Browser, workshop: Workshop, tmp_path: Path
) -> None:
    context = await logged_in(browser, workshop, "instructor", home="/admin/")
    page = await context.new_page()
    await page.goto(f"{workshop.url}/admin/")
    async with page.expect_download(timeout=30_000) as started:
        await page.get_by_role("link", name="Export the room (.zip)").click()
    download = await started.value
    assert download.suggested_filename.startswith("workshop-room-")
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    names = set(entries(saved))
    assert {f"user001/{n}" for n in FILES.values() if n} <= names
    assert {"user002/outputs/bob.png", "user002/inputs/bob.jpg"} <= names
    await context.close()


async def test_an_older_frontend_shows_the_control_too(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    static = older_frontend()
    if static is None:
        pytest.skip("no older frontend: set CW_TEST_FRONTEND_DIR or let pip reach an index")
    proc, older = start_workshop(
        tmp_path_factory.mktemp("older-export"), env={"CW_FRONTEND_DIR": str(static)}
    )
    try:
        mine = older.data / "outputs/user001/ComfyUI_00001_.png"
        mine.parent.mkdir(parents=True)
        mine.write_bytes(b"png")
        context = await logged_in(browser, older, "user001")
        page = await context.new_page()
        await open_page(page, older, "user001")
        await page.wait_for_selector("html[data-cw-export]", state="attached", timeout=30_000)
        where = await page.get_attribute("html", "data-cw-export")
        button = page.locator(
            "#cw-export"
            if where == "fixed"
            else f'[data-testid=action-bar-buttons] button[aria-label="{LABEL}"]'
        )
        await button.wait_for(state="visible", timeout=30_000)
        await close_dialogs(page)
        async with page.expect_download(timeout=30_000) as started:
            await button.click()
        saved = tmp_path / "older.zip"
        await (await started.value).save_as(saved)
        assert entries(saved) == {"outputs/ComfyUI_00001_.png": b"png"}
        await context.close()
    finally:
        stop_workshop(proc)
