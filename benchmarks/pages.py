"""Page benchmark: the real ComfyUI page (the installed comfyui-frontend-package) in headless
Chromium against a whole local workshop as `comfy-workshop up` starts it (private redis-server,
the queue manager, one zero-delay simulated GPU worker = ComfyUI simulator + worker agent).

  run -> image  a logged-in participant's page: randomise the KSampler seed of the frontend's
                default graph, click Run, time until the page has the new output image
                (`/userNNN/api/view?...type=output`, 200); sequential runs in blocks of 3,
                alternating with blocks on the same frontend served by the simulator (only
                the page under test is open: see `run_to_image`)
  memory        RSS of the queue manager and of its private redis-server, idle and with 20
                participants' pages open, beside one ComfyUI container per participant
  page load     `goto` -> `window.app.graph` ready and the network settled, fresh browser
                context each time (no cache): `/user001/` through our server beside the same
                frontend served by the ComfyUI simulator directly (its `front_end_root`,
                plus the settings/userdata routes a page needs, answered as ours answers them)
  --comfyui-url URL  run -> image on the trivial graph (EmptyImage -> SaveImage, a fresh colour
                each run) against a real ComfyUI: our workshop with one agent in front of it
                (`up --comfyui-url`) beside the same frontend served by that ComfyUI directly
                (start it with the same frontend: `--front-end-root` of comfyui-frontend-package,
                e.g. /work/shared/tools/real-comfyui.sh ... PORT STATIC_DIR)
  --frontend-dir DIR  our pages from that frontend (`CW_FRONTEND_DIR`). The frontend version
                each page ran is printed. An older ComfyUI (0.3.x) asks for an older frontend
                than the package installed here; the newer one calls `/api/jobs`, which such a
                ComfyUI lacks (404), so its page skips the job lists ours fetches and draws.
                Like for like: the frontend it asks for (`system_stats`) on both sides.
Figures are printed, never asserted. Chromium is Debian's (/usr/bin/chromium, or
CW_TEST_CHROMIUM); no browser is ever downloaded. Requests to the internet (release notes,
model checks) are aborted, as in the page tests.
Usage: python -m benchmarks.pages [--runs 20] [--loads 10] [--pages 20] [--json PATH]
           [--parts runs,memory,loads] [--comfyui-url URL [--frontend-dir DIR]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import comfyui_frontend_package
import httpx
import psutil
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    Route,
    async_playwright,
)

from queue_manager.cli.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CW_TEST_CHROMIUM", "/usr/bin/chromium")
STATIC = Path(comfyui_frontend_package.__file__).parent / "static"
CONTAINER_MB = 400  # the anchor: one ComfyUI container per participant, ~400 MB each
MB = 1e6  # memory figures in MB (10^6 bytes), the anchor's unit
# A run's time, split by the job's own timestamps (the server's clock, ms resolution).
PHASES = {
    "click -> job accepted": "the page's POST /api/prompt",
    "accepted -> started on the GPU": "queue, claim, hand-over to the simulator",
    "started -> `executed` on the page": "the graph runs, the image is uploaded, events relayed",
    "`executed` -> image on the page": "the canvas's GET /api/view",
}


# -- processes -----------------------------------------------------------------------------------


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Workshop:
    proc: subprocess.Popen[bytes]
    url: str
    passwords: dict[str, str]
    # Everything it started (redis-server, simulators, agents), to make sure none outlives it.
    children: list[psutil.Process] = field(default_factory=list)

    def parts(self) -> dict[str, list[psutil.Process]]:
        """The `up` process is the queue manager itself (uvicorn in that process); the private
        redis-server, the simulators and the worker agents are its child processes."""
        out: dict[str, list[psutil.Process]] = {
            "queue manager": [psutil.Process(self.proc.pid)],
            "redis-server": [],
            "simulator": [],
            "worker agent": [],
        }
        for child in self.children:
            cmd = child.cmdline()
            if cmd and Path(cmd[0]).name.startswith("redis-server"):
                out["redis-server"].append(child)
            elif "worker.simulator" in cmd or "simulator" in cmd:
                out["simulator"].append(child)
            elif cmd[-2:] == ["-m", "worker"]:
                out["worker agent"].append(child)
        return out


def start_workshop(
    data: Path,
    users: int,
    workers: int = 1,
    comfyui_url: str | None = None,
    frontend_dir: Path | None = None,
) -> Workshop:
    """`comfy-workshop up` with zero-delay simulated GPUs, or one agent for `comfyui_url`;
    its pages from `frontend_dir` (`CW_FRONTEND_DIR`) where given."""
    data.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), data / "up.log"
    gpus = ("--comfyui-url", comfyui_url) if comfyui_url else ("--workers", str(workers))
    proc = spawn(
        [
            *(sys.executable, "-m", "queue_manager", "up", "--port", str(port)),
            *("--data", str(data), "--users", str(users), *gpus, "--step-delay", "0"),
        ],
        log,
        {"CW_FRONTEND_DIR": str(frontend_dir)} if frontend_dir else None,
    )
    url = f"http://127.0.0.1:{port}"
    workshop = Workshop(proc, url, {})
    try:
        wait_http(f"{url}/readyz", proc, log)
        with (data / "credentials.csv").open() as f:
            workshop.passwords = {r["user"]: r["password"] for r in csv.DictReader(f)}
        # The page needs the workers' node catalogue: wait until a worker has registered.
        auth = ("user001", workshop.passwords["user001"])
        deadline = time.monotonic() + 60
        while "SaveImage" not in object_info(f"{url}/user001/api/object_info", auth):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker registered:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        workshop.children = psutil.Process(proc.pid).children(recursive=True)
    except BaseException:
        stop_workshop(workshop)
        raise
    return workshop


def object_info(url: str, auth: tuple[str, str]) -> dict[str, Any]:
    try:
        info: dict[str, Any] = httpx.get(url, auth=auth, timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return info


def stop_workshop(workshop: Workshop) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        workshop.children += psutil.Process(workshop.proc.pid).children(recursive=True)
    stop(workshop.proc, group=False)  # it stops its workers, then its redis-server
    for child in workshop.children:  # only if something went wrong
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.is_running():
                child.kill()


def stop(proc: subprocess.Popen[bytes], group: bool = True) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()


def start_simulator_page(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, log = free_port(), work / "simulator-page.log"
    proc = spawn(
        [sys.executable, "-m", "benchmarks.pages", "--serve-simulator", str(port), str(work)],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/features", proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def serve_simulator(port: int, work: Path) -> None:
    """The ComfyUI simulator serving the frontend at `/` (ComfyUI's --front-end-root), as
    `comfy-workshop simulator --front-end-root` runs it, plus the few routes a page needs to
    start that the simulator does not implement (users, settings, userdata, i18n, blueprints,
    templates): answered as our queue manager answers a fresh participant, so both pages get
    the same bodies and the comparison is the servers'. Runs in its own process."""
    import uvicorn
    from starlette.requests import Request as HTTPRequest
    from starlette.responses import Response as HTTPResponse
    from starlette.routing import Route as HTTPRoute

    from worker.simulator.files import ComfyJSONResponse
    from worker.simulator.runtime import SimulatorConfig
    from worker.simulator.server import create_app

    app = create_app((work / "simulator").resolve(), SimulatorConfig(front_end_root=STATIC))
    settings: dict[str, Any] = {}

    def const(value: Any) -> Callable[[HTTPRequest], Any]:
        async def answer(request: HTTPRequest) -> HTTPResponse:
            return ComfyJSONResponse(value)

        return answer

    async def not_found(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(status_code=404)

    async def get_settings(request: HTTPRequest) -> HTTPResponse:
        return ComfyJSONResponse(settings)

    async def post_setting(request: HTTPRequest) -> HTTPResponse:
        settings[request.path_params["id"]] = json.loads(await request.body() or b"null")
        return HTTPResponse()

    folders = ["checkpoints", "diffusion_models", "loras", "text_encoders", "vae"]
    app.router.routes[0:0] = [
        HTTPRoute("/api/users", const({"storage": "server", "migrated": True})),
        HTTPRoute("/api/settings", get_settings),
        HTTPRoute("/api/settings/{id}", post_setting, methods=["POST"]),
        HTTPRoute("/api/userdata", not_found),
        HTTPRoute("/api/userdata/{file:path}", not_found),
        HTTPRoute("/api/i18n", const({})),
        HTTPRoute("/api/workflow_templates", const({})),
        HTTPRoute("/api/global_subgraphs", const({})),
        HTTPRoute("/api/node_replacements", const({})),
        HTTPRoute("/api/experiment/models", const([{"name": n, "folders": []} for n in folders])),
        HTTPRoute("/templates/index.json", const([])),
    ]
    print(f"ComfyUI simulator with the frontend: http://127.0.0.1:{port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets")


# -- pages ---------------------------------------------------------------------------------------


async def offline_context(
    browser: Browser, base: str, screen: tuple[int, int] = (1400, 900)
) -> BrowserContext:
    """A fresh context (own cookies, storage and cache) that reaches only `base`."""
    context = await browser.new_context(viewport={"width": screen[0], "height": screen[1]})

    async def block_external(route: Route) -> None:
        await route.abort()

    await context.route(lambda url: not url.startswith(base), block_external)
    return context


async def logged_in(
    browser: Browser, workshop: Workshop, user: str, screen: tuple[int, int] = (1400, 900)
) -> BrowserContext:
    context = await offline_context(browser, workshop.url, screen)
    page = await context.new_page()
    await page.goto(f"{workshop.url}/login?next=/{user}/")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", workshop.passwords[user])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{workshop.url}/{user}/")
    await page.close()
    return context


async def open_page(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
    await page.wait_for_load_state("networkidle")
    await page.keyboard.press("Escape")  # the first visit's template browser


async def close_dialogs(page: Page) -> None:
    """The first visit's template browser (it may open late) or any other dialog."""
    for _ in range(20):
        if not await page.locator("[data-testid=dialog-overlay]").count():
            return
        await page.keyboard.press("Escape")
        await page.wait_for_timeout(100)
    raise RuntimeError("a dialog on the page does not close")


@dataclass
class Load:
    ready_ms: float  # goto -> window.app.graph
    settled_ms: float  # goto -> the last request of the load finished (network idle after it)
    requests: int


async def timed_load(context: BrowserContext, url: str) -> Load:
    page = await context.new_page()
    last = [0.0]
    count = [0]

    def done(request: Request) -> None:
        last[0] = time.perf_counter()
        count[0] += 1

    page.on("requestfinished", done)
    page.on("requestfailed", done)
    t0 = time.perf_counter()
    await page.goto(url)
    await page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
    ready = time.perf_counter()
    # Playwright's networkidle: no request for 500 ms; the load ended with the last request.
    await page.wait_for_load_state("networkidle")
    await page.close()
    return Load((ready - t0) * 1000, (max(last[0], ready) - t0) * 1000, count[0])


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    """The median of the known values (NaN: not known), NaN if none is."""
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p90": pct(values, 90),
        "min": min(values),
        "max": max(values),
    }


def rss(procs: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs) / MB


def uss(procs: list[psutil.Process]) -> float:
    return sum(p.memory_full_info().uss for p in procs) / MB


def memory(workshop: Workshop) -> dict[str, dict[str, float]]:
    return {
        name: {"rss": rss(procs), "uss": uss(procs)}
        for name, procs in workshop.parts().items()
        if procs
    }


# -- the three measurements ----------------------------------------------------------------------


SEED = (
    "() => { app.graph.nodes.find(n => n.type === 'KSampler').widgets"
    ".find(w => w.name === 'seed').value = Math.floor(Math.random() * 1e15); }"
)
# EmptyImage -> SaveImage, as the trivial graph; on screen, like the default graph's.
TRIVIAL = """async () => {
  app.graph.clear();
  const image = LiteGraph.createNode('EmptyImage'); image.pos = [100, 100]; app.graph.add(image);
  const save = LiteGraph.createNode('SaveImage'); save.pos = [500, 100]; app.graph.add(save);
  image.connect(0, save, 0);
  app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1; app.canvas.setDirty(true, true);
}"""
COLOUR = (
    "() => { app.graph.nodes.find(n => n.type === 'EmptyImage').widgets"
    ".find(w => w.name === 'color').value = Math.floor(Math.random() * 0xffffff); }"
)


@dataclass(frozen=True)
class Graph:
    """What a page runs: `load` puts it on the canvas, `vary` changes an input before each run
    (a repeated prompt would be answered from ComfyUI's cache)."""

    name: str
    load: str
    vary: str


DEFAULT_GRAPH = Graph("the default graph", "async () => { await app.loadGraphData(); }", SEED)
TRIVIAL_GRAPH = Graph("the trivial graph (EmptyImage -> SaveImage)", TRIVIAL, COLOUR)
SCREEN = (1920, 1080)  # the whole default graph, SaveImage included, is on screen
IMAGE_WAIT = 15.0  # seconds after `executed` for the page to fetch the image
# The Run button: its own `queue-button` (frontend 1.3x and later) or the first half of the
# `queue-button` split button (1.2x, the frontend a ComfyUI 0.3.6x asks for).
RUN_BUTTON = (
    "button[data-testid='queue-button'], [data-testid='queue-button'] > button.p-splitbutton-button"
)
BLOCK = 3  # runs per opening of a page (after one warm-up run)


@dataclass
class Run:
    prompt_id: str
    clicked: float  # wall clock, s
    executed_ms: float  # click -> the page's socket has `executed` with the output image
    image_ms: float | None  # click -> the page has the image (/view 200); None: never fetched


async def until(condition: Callable[[], bool], deadline: float) -> bool:
    """Polls `condition` (set by the page's event handlers, which time the events themselves)
    until `deadline` (perf_counter)."""
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


class RunPage:
    """A page showing the frontend's default graph, run again and again with a fresh seed."""

    def __init__(self, page: Page, graph: Graph) -> None:
        self.page = page
        self.graph = graph
        self.frontend: str | None = None  # the version the page says it is
        self.steps: int | None = None  # the graph's KSampler steps, if it has one
        self.executed: dict[str, tuple[float, str]] = {}  # prompt id -> (when, image file)
        self.views: dict[str, tuple[float, int]] = {}  # image file -> (when, status)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("response", self._response)

    @classmethod
    async def open(cls, page: Page, url: str, graph: Graph) -> RunPage:
        self = cls(page, graph)  # listening before the page opens its socket
        await open_page(page, url)
        self.frontend = await page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? null")
        await page.evaluate(graph.load)
        await page.keyboard.press("Escape")
        # The canvas fetches an output image once its node is on screen (else only the
        # "completed" banner does, after the "queued" banner's 4 s): keep SaveImage in view.
        await page.wait_for_function(
            "() => app.canvas.visible_nodes?.some(n => n.type === 'SaveImage')", timeout=10_000
        )
        self.steps = await page.evaluate(
            "() => app.graph.nodes.find(n => n.type === 'KSampler')"
            "?.widgets.find(w => w.name === 'steps').value ?? null"
        )
        return self

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            return
        message = json.loads(payload)
        if message.get("type") != "executed":
            return
        data = message["data"]
        images = (data.get("output") or {}).get("images") or []
        names = [i["filename"] for i in images if i.get("type") == "output"]
        if names:
            self.executed.setdefault(data["prompt_id"], (time.perf_counter(), names[0]))

    def _response(self, response: Response) -> None:
        if "/api/view?" not in response.url:
            return
        query = parse_qs(urlsplit(response.url).query)
        if query.get("type") == ["output"] and query.get("filename"):
            self.views.setdefault(query["filename"][0], (time.perf_counter(), response.status))

    async def run(self) -> Run:
        await close_dialogs(self.page)
        await self.page.evaluate(self.graph.vary)
        async with self.page.expect_response(lambda r: r.url.endswith("/api/prompt")) as sent:
            t0, wall0 = time.perf_counter(), time.time()
            await self.page.click(RUN_BUTTON)
        answer = await sent.value
        if answer.status != 200:
            raise RuntimeError(f"Run was refused: {answer.status} {await answer.text()}")
        prompt_id: str = (await answer.json())["prompt_id"]
        if not await until(lambda: prompt_id in self.executed, t0 + 60):
            raise RuntimeError(f"no `executed` for {prompt_id} on the page within 60 s")
        done, name = self.executed[prompt_id]
        await until(lambda: name in self.views, done + IMAGE_WAIT)
        image = self.views.get(name)
        await self.page.wait_for_timeout(300)  # the page finishes the job's last messages
        return Run(
            prompt_id,
            wall0,
            (done - t0) * 1000,
            (image[0] - t0) * 1000 if image is not None and image[1] == 200 else None,
        )


async def run_block(
    context: BrowserContext, url: str, graph: Graph, runs: int
) -> tuple[list[Run], RunPage]:
    """One page opened on `url`, one warm-up run (not counted), `runs` runs, the page closed
    (what it said of itself, its steps and frontend, stays on the RunPage)."""
    page = await context.new_page()
    try:
        run_page = await RunPage.open(page, url, graph)
        await run_page.run()
        return [await run_page.run() for _ in range(runs)], run_page
    finally:
        await page.close()


async def run_to_image(
    browser: Browser,
    workshop: Workshop,
    base_url: str,
    runs: int,
    graph: Graph = DEFAULT_GRAPH,
    base: str = "simulator",
) -> dict[str, Any]:
    """Our page and the baseline's page (the same frontend served by the GPU side's own server,
    `base`) in alternating blocks of BLOCK runs. Only the page under test is open during its
    block: a ComfyUI sends its queue's `status` to every socket it has, so a baseline page left
    open on the ComfyUI our worker drives would hear each of our runs, fetch its job lists and
    redraw, on the CPU our run needs (our server sends the baseline's runs to no one)."""
    user = "user001"
    ours_context = await logged_in(browser, workshop, user, SCREEN)
    sim_context = await offline_context(browser, base_url, SCREEN)
    try:
        got: dict[str, list[Run]] = {"ours": [], base: []}
        frontends: dict[str, str | None] = {}
        steps: int | None = None
        while len(got["ours"]) < runs:
            n = min(BLOCK, runs - len(got["ours"]))
            done, shown = await run_block(ours_context, f"{workshop.url}/{user}/", graph, n)
            got["ours"] += done
            steps, frontends["ours"] = shown.steps, shown.frontend
            done, shown = await run_block(sim_context, f"{base_url}/", graph, n)
            got[base] += done
            frontends[base] = shown.frontend
        # Where our run's time goes, from the job's own timestamps (server clock, ms).
        phases: dict[str, list[float]] = {k: [] for k in PHASES}
        auth = (user, workshop.passwords[user])
        async with httpx.AsyncClient(base_url=f"{workshop.url}/{user}/api", auth=auth) as api:
            for run in got["ours"]:
                job = (await api.get(f"/jobs/{run.prompt_id}")).json()
                created, start = job["create_time"], job["execution_start_time"]
                clicked, executed = run.clicked * 1000, run.clicked * 1000 + run.executed_ms
                image = clicked + (run.image_ms if run.image_ms is not None else math.nan)
                split = (created - clicked, start - created, executed - start, image - executed)
                for key, ms in zip(PHASES, split, strict=True):
                    phases[key].append(ms)
    finally:
        await ours_context.close()
        await sim_context.close()
    out: dict[str, Any] = {
        "steps": steps,
        "runs": runs,
        "graph": graph.name,
        "base": base,
        "frontend": frontends,
    }
    for name, done in got.items():
        images = [r.image_ms for r in done if r.image_ms is not None]
        out[name] = {
            "executed": summary([r.executed_ms for r in done]),
            "image": summary(images) if images else None,
            "image_ms": images,
            "image_never_fetched": len(done) - len(images),
        }
    out["ours"]["phases_p50_ms"] = {k: median(v) for k, v in phases.items()}
    for name, done in got.items():
        gaps = [r.image_ms - r.executed_ms for r in done if r.image_ms is not None]
        out[name]["executed_to_image_p50_ms"] = median(gaps)
    return out


async def pages_memory(browser: Browser, work: Path, pages: int) -> dict[str, Any]:
    workshop = start_workshop(work / "memory", users=pages)
    contexts: list[BrowserContext] = []
    try:
        await asyncio.sleep(3)  # workers registered, catalogue loaded
        idle = memory(workshop)
        for n in range(1, pages + 1):
            context = await logged_in(browser, workshop, f"user{n:03d}")
            contexts.append(context)
            await open_page(await context.new_page(), f"{workshop.url}/user{n:03d}/")
        await asyncio.sleep(3)  # the pages' sockets and polls in their steady state
        loaded = memory(workshop)
        return {"pages": pages, "idle": idle, "loaded": loaded}
    finally:
        for context in contexts:
            await context.close()
        stop_workshop(workshop)


async def page_loads(
    browser: Browser, workshop: Workshop, simulator_url: str, loads: int
) -> dict[str, list[Load]]:
    out: dict[str, list[Load]] = {"ours": [], "simulator": []}
    for i in range(loads + 1):  # one warm-up load each (server side), not counted
        for name in ("ours", "simulator"):  # interleaved: drift hits both alike
            if name == "ours":
                context = await logged_in(browser, workshop, "user001")
                url = f"{workshop.url}/user001/"
            else:
                context = await offline_context(browser, simulator_url)
                url = f"{simulator_url}/"
            load = await timed_load(context, url)
            await context.close()
            if i:
                out[name].append(load)
    return out


# -- report --------------------------------------------------------------------------------------


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50']:.0f} ms, p90 {s['p90']:.0f} ms, min {s['min']:.0f}, max {s['max']:.0f}"


async def main(args: argparse.Namespace) -> None:
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium (make install-test does)")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cw-pages-") as tmp:
        work = Path(tmp)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                await measure(browser, work, args, results)
            finally:
                await browser.close()
    mem = psutil.virtual_memory().total / 2**30
    print(
        f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, Python {sys.version.split()[0]}, "
        f"{chromium_version()} (headless), "
        f"comfyui-frontend-package {version('comfyui-frontend-package')} installed"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"figures also in {args.json}")


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "Chromium"
    return out.stdout.strip() or "Chromium"


async def measure(
    browser: Browser, work: Path, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    parts = set(args.parts.split(","))
    if args.comfyui_url:
        results["run_to_image_comfyui"] = await real_comfyui_runs(browser, work, args)
    if not parts & {"runs", "memory", "loads"}:
        return
    workshop = start_workshop(work / "runs", users=2)
    simulator: subprocess.Popen[bytes] | None = None
    try:
        simulator, simulator_url = start_simulator_page(work)
        if "runs" in parts:
            r = await run_to_image(browser, workshop, simulator_url, args.runs)
            results["run_to_image"] = r
            report_runs(r, "1. Run -> image, zero-delay simulated GPU")
        if "memory" in parts:  # on its own workshop (this one idles meanwhile)
            results["memory_mb"] = await pages_memory(browser, work, args.pages)
            report_memory(results["memory_mb"])
        if "loads" in parts:
            loads = await page_loads(browser, workshop, simulator_url, args.loads)
            results["page_load"] = report_loads(loads)
    finally:
        if simulator is not None:
            stop(simulator)
        stop_workshop(workshop)


async def real_comfyui_runs(
    browser: Browser, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The trivial graph on a real ComfyUI: through our workshop (one agent in front of it)
    beside its own page."""
    url = args.comfyui_url.rstrip("/")
    workshop = start_workshop(
        work / "real", users=2, comfyui_url=url, frontend_dir=args.frontend_dir
    )
    try:
        r = await run_to_image(browser, workshop, url, args.runs, TRIVIAL_GRAPH, "ComfyUI")
    finally:
        stop_workshop(workshop)
    r["required_frontend"] = required_frontend(url)
    report_runs(r, f"0. Run -> image, a real ComfyUI at {url}")
    return r


def required_frontend(url: str) -> str | None:
    """The frontend version a ComfyUI asks for (`system_stats`), if it says."""
    try:
        stats = httpx.get(f"{url}/api/system_stats", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None
    version = stats.get("system", {}).get("required_frontend_version")
    return version if isinstance(version, str) else None


def report_runs(r: dict[str, Any], title: str) -> None:
    base = r["base"]
    ours, sim = r["ours"], r[base]
    steps = f" ({r['steps']} steps)" if r["steps"] else ""
    print(
        f"{title}: {r['runs']} runs on each page, in alternating blocks of {BLOCK} (each page "
        f"opened for its block only, after one warm-up run), our page and the same frontend "
        f"served by the {base} directly; {r['graph']}{steps}, a fresh input each run."
    )
    served = r["frontend"]
    print(f"   frontend on the pages: ours {served.get('ours')}, {base} {served.get(base)}")
    wanted = r.get("required_frontend")
    if wanted and served.get(base) != wanted:
        print(
            f"   NOTE: this ComfyUI asks for frontend {wanted}; a newer one may call routes it "
            f"lacks (such as /api/jobs), and where it gets a 404 its page skips the job lists "
            f"ours fetches and draws. Like for like: start it with {wanted}'s static folder as "
            f"--front-end-root and pass the same folder as --frontend-dir."
        )
    for name, x in (("ours", ours), (base, sim)):
        image = (
            f"{fmt(x['image'])} ({len(x['image_ms'])} runs"
            + (
                f"; {x['image_never_fetched']} images never fetched"
                if x["image_never_fetched"]
                else ""
            )
            + ")"
            if x["image"]
            else "the page never fetched the image"
        )
        print(f"   {name:9} click -> image (/view 200): {image}")
        print(f"   {name:9} click -> `executed` on the page's socket: {fmt(x['executed'])}")
    if ours["image"] and sim["image"]:
        r["ratio_image_p50"] = ours["image"]["p50"] / sim["image"]["p50"]
        r["added_image_p50_ms"] = ours["image"]["p50"] - sim["image"]["p50"]
    r["ratio_executed_p50"] = ours["executed"]["p50"] / sim["executed"]["p50"]
    ratio = f"image {r['ratio_image_p50']:.2f}x, " if "ratio_image_p50" in r else ""
    print(f"   ours / {base} (p50): {ratio}executed {r['ratio_executed_p50']:.2f}x")
    if "added_image_p50_ms" in r:
        print(f"   ours - {base}, click -> image (p50): {r['added_image_p50_ms']:+.0f} ms")
    print("   our run, split by the job's own timestamps (p50):")
    for name, ms in ours["phases_p50_ms"].items():
        print(f"     {name}: {ms:.0f} ms ({PHASES[name]})")
    print(
        f"   `executed` -> image on the {base}'s page (p50): "
        f"{sim['executed_to_image_p50_ms']:.0f} ms",
        flush=True,
    )


def report_memory(m: dict[str, Any]) -> None:
    idle, loaded, n = m["idle"], m["loaded"], m["pages"]
    qm0, qm1 = idle["queue manager"]["rss"], loaded["queue manager"]["rss"]
    rd0, rd1 = idle["redis-server"]["rss"], loaded["redis-server"]["rss"]
    anchor = n * CONTAINER_MB
    total = qm1 + rd1
    m["anchor"] = anchor
    m["ratio_ours_over_anchor"] = total / anchor
    print(
        f"2. Memory, `comfy-workshop up --users {n} --workers 1` (RSS, MB = 10^6 bytes). The "
        "queue manager is the `up` process itself (uvicorn in it); the redis-server, the "
        "simulator and the worker agent are its child processes."
    )
    print(
        f"   queue manager: idle {qm0:.1f} MB; with {n} logged-in pages open {qm1:.1f} MB "
        f"(+{(qm1 - qm0) / n:.2f} MB per page; USS {loaded['queue manager']['uss']:.1f} MB)"
    )
    print(f"   redis-server:  idle {rd0:.1f} MB; with {n} pages open {rd1:.1f} MB")
    others = [f"{k} {loaded[k]['rss']:.1f} MB" for k in ("simulator", "worker agent")]
    print(f"   not counted (the GPU side): {', '.join(others)}")
    print(
        f"   queue manager + redis with {n} pages: {total:.1f} MB; anchor, one ComfyUI "
        f"container per participant: {n} x {CONTAINER_MB} MB = {anchor / 1000:.1f} GB; "
        f"ours / anchor = {total / anchor:.3f} ({anchor / total:.0f}x less)",
        flush=True,
    )


def report_loads(loads: dict[str, list[Load]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: {
            "settled": summary([x.settled_ms for x in v]),
            "ready": summary([x.ready_ms for x in v]),
            "requests": statistics.median(x.requests for x in v),
        }
        for name, v in loads.items()
    }
    ours, sim = out["ours"], out["simulator"]
    out["ratio_settled_p50"] = ours["settled"]["p50"] / sim["settled"]["p50"]
    out["ratio_ready_p50"] = ours["ready"]["p50"] / sim["ready"]["p50"]
    print(
        f"3. Page load, {len(loads['ours'])} loads each after one warm-up, interleaved, a fresh "
        "browser context each (no cache); goto -> window.app.graph ready and the network "
        "settled (last request done; Playwright's 500 ms idle wait not counted):"
    )
    print(
        f"   through our server (/user001/, logged in): {fmt(ours['settled'])} "
        f"({ours['requests']:.0f} requests)"
    )
    print(
        f"   the simulator serving the same frontend at /: {fmt(sim['settled'])} "
        f"({sim['requests']:.0f} requests)"
    )
    print(
        f"   ours / simulator: {out['ratio_settled_p50']:.2f}x (p50). app.graph ready alone: "
        f"ours p50 {ours['ready']['p50']:.0f} ms, simulator p50 {sim['ready']['p50']:.0f} ms, "
        f"{out['ratio_ready_p50']:.2f}x",
        flush=True,
    )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument(
        "--parts",
        default="runs,memory,loads",
        help="which of runs, memory, loads to measure (comma-separated; default all)",
    )
    ap.add_argument(
        "--comfyui-url",
        help="also run -> image on the trivial graph against this real ComfyUI (see above)",
    )
    ap.add_argument(
        "--frontend-dir",
        type=Path,
        help="with --comfyui-url: serve our pages from this frontend `static` folder "
        "(CW_FRONTEND_DIR), the one the real ComfyUI was started with",
    )
    ap.add_argument("--serve-simulator", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve_simulator:
        serve_simulator(int(a.serve_simulator[0]), Path(a.serve_simulator[1]))
    else:
        asyncio.run(main(a))
