"""The instructor's workflows in the real ComfyUI page (frontend 1.58.1, or the one in
`CW_TEST_FRONTEND_DIR`) in headless Chromium at 1920x1080: a fresh participant lands on the
first published workflow (no template browser), the Workflows sidebar lists every published
one, Run works on it, a save keeps their own copy that a new version never touches, and "send
to everyone" opens a tab in two participants' pages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.support.frontends import older_frontend
from tests.support.graphs import sampler
from tests.support.pages import logged_in, run
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

UI = (Path(__file__).parents[1] / "data" / "workflows" / "txt2img-ui.json").read_bytes()
PROMPT_TEXT = "a workshop lighthouse at dusk"
ON_STEP_1 = (
    "() => app.extensionManager.workflow.activeWorkflow?.path === 'workflows/Workshop/Step 1.json'"
)


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    proc, running = start_workshop(tmp_path_factory.mktemp("workflows"), users=3)
    try:
        yield running
    finally:
        stop_workshop(proc)


@pytest.fixture
async def teacher(workshop: Workshop) -> AsyncIterator[httpx.AsyncClient]:
    auth = ("instructor", workshop.passwords["instructor"])
    async with httpx.AsyncClient(base_url=workshop.url, auth=auth, timeout=10) as client:
        yield client


async def publish(teacher: httpx.AsyncClient, name: str, body: bytes, **params: str) -> None:
    r = await teacher.post("/admin/api/workflows", params={"name": name, **params}, content=body)
    assert r.status_code == 200, r.text


async def open_fresh(page: Page, workshop: Workshop, user: str) -> None:
    await page.goto(f"{workshop.url}/{user}/")
    await page.wait_for_function("() => window.app && window.app.graph", timeout=120_000)


async def active_path(page: Page) -> str | None:
    path: str | None = await page.evaluate(
        "() => app.extensionManager?.workflow?.activeWorkflow?.path ?? null"
    )
    return path


async def test_a_fresh_participant_lands_on_the_first_workflow_and_runs_it(
    browser: Browser, workshop: Workshop, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 1", UI, first="true")
    await publish(teacher, "Step 2", json.dumps(sampler(3)).encode())
    context = await logged_in(browser, workshop, "user001")
    page = await context.new_page()
    await open_fresh(page, workshop, "user001")
    await page.wait_for_function(ON_STEP_1, timeout=30_000)
    assert await page.evaluate(
        "(text) => app.graph.nodes.some(n => n.widgets?.some(w => w.value === text))", PROMPT_TEXT
    )
    types = await page.evaluate("() => app.graph.nodes.map(n => n.type).sort()")
    assert types == sorted(n["type"] for n in json.loads(UI)["nodes"])
    # No template browser, no dialog over the canvas.
    overlay = page.locator("[data-testid=dialog-overlay]")
    assert not await overlay.count() or not await overlay.first.is_visible()
    # The Workflows sidebar lists every published workflow.
    await page.keyboard.press("w")
    sidebar = page.locator(".workflows-sidebar, [class*=workflows-sidebar]").first
    await sidebar.wait_for(timeout=10_000)
    await page.get_by_text("Workshop", exact=True).first.click()
    for name in ("Step 1", "Step 2"):
        await sidebar.get_by_text(name, exact=True).first.wait_for(timeout=10_000)
    # Run works on it.
    prompt_id = await run(page)
    async with httpx.AsyncClient(base_url=workshop.url, timeout=10) as user:
        user.auth = ("user001", workshop.passwords["user001"])
        for _ in range(300):
            history = (await user.get(f"/user001/api/history/{prompt_id}")).json()
            if history.get(prompt_id, {}).get("status", {}).get("completed"):
                break
            await page.wait_for_timeout(100)
        assert history[prompt_id]["status"]["status_str"] == "success", history
    # A second visit does not yank the graph away: the first workflow is offered once (the
    # page says it is open once it has checked that it is the active tab).
    await page.wait_for_function(
        "async () => (await (await fetch('/user001/api/workshop/welcome')).json())"
        ".workflow === null",
        polling=200,
        timeout=30_000,
    )
    await context.close()


async def test_a_save_keeps_the_own_copy_and_a_new_version_appears_beside_it(
    browser: Browser, workshop: Workshop, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 1", UI, first="true")
    context = await logged_in(browser, workshop, "user002")
    page = await context.new_page()
    await open_fresh(page, workshop, "user002")
    await page.wait_for_function(ON_STEP_1, timeout=30_000)
    await page.evaluate(
        """() => {
            const node = app.graph.nodes.find(n => n.type === 'CLIPTextEncode');
            node.widgets[0].value = 'my own lighthouse';
            app.graph.setDirtyCanvas(true, true);
        }"""
    )
    await page.evaluate("() => app.extensionManager.command.execute('Comfy.SaveWorkflow')")
    own_path = "/user002/api/userdata/" + "workflows%2FStep%201.json"
    async with httpx.AsyncClient(base_url=workshop.url, timeout=10) as user:
        user.auth = ("user002", workshop.passwords["user002"])
        for _ in range(100):
            own = await user.get(own_path)
            if own.status_code == 200:
                break
            await page.wait_for_timeout(100)
        assert own.status_code == 200, own.text
        assert "my own lighthouse" in own.text
        v2 = json.loads(UI)
        v2["nodes"][1]["widgets_values"] = ["version two"]
        await publish(teacher, "Step 1", json.dumps(v2).encode())
        published = await user.get("/user002/api/userdata/workflows%2FWorkshop%2FStep%201.json")
        assert "version two" in published.text
        assert "my own lighthouse" in (await user.get(own_path)).text
    # They carry on in their own copy; the Workshop one still shows what was published.
    await page.wait_for_function(
        "() => app.extensionManager.workflow.activeWorkflow?.path === 'workflows/Step 1.json'",
        timeout=15_000,
    )
    assert await page.evaluate(
        "() => app.graph.nodes.some(n => n.widgets?.some(w => w.value === 'my own lighthouse'))"
    )
    # The sidebar follows: both the participant's copy and the Workshop one are listed.
    await page.wait_for_function(
        "() => ['workflows/Step 1.json', 'workflows/Workshop/Step 1.json'].every("
        "p => app.extensionManager.workflow.getWorkflowByPath(p))",
        timeout=10_000,
    )
    await context.close()


async def test_send_to_everyone_opens_a_tab_in_two_pages(
    browser: Browser, workshop: Workshop, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 3", json.dumps(sampler(5)).encode())
    pages = []
    for user in ("user001", "user003"):
        context = await logged_in(browser, workshop, user)
        page = await context.new_page()
        await open_fresh(page, workshop, user)
        await page.wait_for_function("() => app.extensionManager.workflow.activeWorkflow")
        pages.append(page)
    await pages[0].wait_for_timeout(1000)  # both sockets subscribed (no event to wait on)
    r = await teacher.post("/admin/api/workflows/Step 3/send")
    assert r.status_code == 200, r.text
    for page in pages:
        await page.wait_for_function(
            "() => app.extensionManager.workflow.openWorkflows"
            ".some(w => w.path.includes('Step 3'))",
            timeout=30_000,
        )
        steps = await page.evaluate(
            "() => app.graph.nodes.find(n => n.type === 'KSampler')?.widgets"
            ".find(w => w.name === 'steps')?.value"
        )
        assert steps == 5
        await page.context.close()


async def test_the_dashboard_publishes_orders_and_removes_workflows_live(
    browser: Browser, workshop: Workshop, teacher: httpx.AsyncClient, tmp_path: Path
) -> None:
    context = await logged_in(browser, workshop, "instructor", home="/admin/")
    page = await context.new_page()
    await page.goto(f"{workshop.url}/admin/")
    panel = page.locator("[data-testid=workflows]")
    lesson = tmp_path / "Lesson A.json"
    lesson.write_bytes(UI)
    odd = tmp_path / "Lesson B.json"
    graph = sampler(2)
    graph["10"] = {"class_type": "NoSuchNode", "inputs": {}}
    odd.write_text(json.dumps(graph))
    broken = tmp_path / "broken.json"
    broken.write_text("{ nope")
    await panel.locator("[data-testid=workflow-file]").set_input_files([lesson, odd, broken])
    await panel.locator("[data-testid=workflow-publish]").click()
    row_b = panel.locator("tr[data-workflow='Lesson B']")
    await row_b.locator("[data-testid=workflow-missing]").wait_for(timeout=15_000)
    assert "NoSuchNode" in (await row_b.inner_text())
    await page.locator("[data-testid=toasts]").get_by_text("not a ComfyUI workflow").wait_for()
    names = await teacher.get("/admin/api/workflows")
    assert "broken" not in [w["name"] for w in names.json()]
    # Reorder: B above A; choose B as the first one.
    await row_b.locator("[data-testid=workflow-up]").click()
    await page.wait_for_function(
        "() => { const rows = [...document.querySelectorAll('[data-testid=workflows-list] tr')]"
        ".map(r => r.dataset.workflow);"
        " return rows.indexOf('Lesson B') < rows.indexOf('Lesson A'); }"
    )
    await row_b.locator("[data-testid=workflow-first]").check()
    for _ in range(100):
        listed = {w["name"]: w for w in (await teacher.get("/admin/api/workflows")).json()}
        if listed["Lesson B"]["first"]:
            break
        await page.wait_for_timeout(100)
    assert listed["Lesson B"]["first"] and not listed["Lesson A"]["first"]
    # The Templates browser's mode is chosen here too.
    await panel.locator("[data-testid=templates-mode]").select_option("hide")
    for _ in range(100):
        mode = (await teacher.get("/admin/api/templates")).json()["mode"]
        if mode == "hide":
            break
        await page.wait_for_timeout(100)
    assert mode == "hide"
    # A change from the command line / API shows up live.
    await teacher.delete("/admin/api/workflows/Lesson A")
    await panel.locator("tr[data-workflow='Lesson A']").wait_for(state="detached", timeout=15_000)
    page.once("dialog", lambda d: d.accept())
    await row_b.locator("[data-testid=workflow-remove]").click()
    await row_b.wait_for(state="detached", timeout=15_000)
    await context.close()


async def test_an_older_frontend_also_opens_the_first_workflow(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    static = older_frontend()
    if static is None:
        pytest.skip("no older frontend: set CW_TEST_FRONTEND_DIR or let pip reach an index")
    proc, older = start_workshop(
        tmp_path_factory.mktemp("older-workflows"), env={"CW_FRONTEND_DIR": str(static)}
    )
    try:
        auth = ("instructor", older.passwords["instructor"])
        async with httpx.AsyncClient(base_url=older.url, auth=auth, timeout=10) as teacher:
            await publish(teacher, "Step 1", UI, first="true")
        context = await logged_in(browser, older, "user001")
        page = await context.new_page()
        await open_fresh(page, older, "user001")
        await page.wait_for_function(ON_STEP_1, timeout=60_000)
        assert await page.evaluate(
            "(text) => app.graph.nodes.some(n => n.widgets?.some(w => w.value === text))",
            PROMPT_TEXT,
        )
        await context.close()
    finally:
        stop_workshop(proc)
