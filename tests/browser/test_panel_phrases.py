"""The panel's words (`frontend/extension/lib/status.js`) as a table, run in Chromium: the
module served as the page serves it, each sentence built from the server's parts once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

from frontend import EXTENSION_DIR

# One Chromium per test: a few seconds each.
pytestmark = [pytest.mark.slow]

ORIGIN = "http://panel.test"
HTML = "text/html"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A blank page that can import the extension's modules (served from the repo)."""
    context = await browser.new_context()

    async def serve(route: Route) -> None:
        name = route.request.url.removeprefix(ORIGIN + "/")
        path = (EXTENSION_DIR / name).resolve()
        if name and path.is_file() and path.is_relative_to(EXTENSION_DIR.resolve()):
            await route.fulfill(body=path.read_text(), content_type="text/javascript")
        else:
            await route.fulfill(
                body="<!doctype html><title>panel</title>", content_type="text/html"
            )

    await context.route(f"{ORIGIN}/**", serve)
    tab = await context.new_page()
    await tab.goto(f"{ORIGIN}/")
    try:
        yield tab
    finally:
        await context.close()


async def table(page: Page, function: str, rows: list[tuple[Any, ...]]) -> list[Any]:
    """`function` of the module applied to each row of arguments, in one round trip."""
    return list(
        await page.evaluate(
            """async ([name, rows]) => {
                const m = await import('/lib/status.js');
                const call = {
                    sentence: (raw, options) => m.jobSentence(m.normalizeJob(raw), options),
                    notice: (raw) => m.pauseNotice(m.normalizeStatus(raw)),
                    about: m.about,
                }[name];
                return rows.map((args) => call(...args));
            }""",
            [function, [list(r) for r in rows]],
        )
    )


def job(status: str, **fields: Any) -> dict[str, Any]:
    return {"prompt_id": "p1", "status": status, "position": None, "detail": "",
            "worker": None, "progress": None, "wait": None, "reason": None,
            "eta_start": None, "eta_finish": None, **fields}  # fmt: skip


SENTENCES = [
    pytest.param(
        job("running", worker="sim-1", progress={"value": 6, "max": 8}, eta_finish=20),
        {},
        "Running on sim-1 · 75% (6/8) · about 20 s left",
        id="running: the worker once, progress once",
    ),
    pytest.param(job("completed"), {}, "Done", id="done once"),
    pytest.param(
        job("queued", position=1, eta_start=2, eta_finish=31),
        {},
        "Next to run · starts in a few seconds, done in about 30 s",
        id="next to run",
    ),
    pytest.param(
        job("queued", position=3, eta_start=41, eta_finish=75),
        {},
        "#3 in the queue · starts in about 40 s, done in about 1 min",
        id="queued: place and times",
    ),
    pytest.param(
        job("queued", position=3, eta_start=41, eta_finish=75),
        {"withPosition": False},
        "Starts in about 40 s, done in about 1 min",
        id="the head says the place: the line does not",
    ),
    pytest.param(
        job("queued", position=3, eta_start=41, eta_finish=75),
        {"elapsed": 30},
        "#3 in the queue · starts in about 10 s, done in about 45 s",
        id="times count down between pushes",
    ),
    pytest.param(
        job("queued", position=2, wait="own_job", eta_start=24, eta_finish=36),
        {},
        "#2 in the queue · waits for your running job to finish · starts in about 25 s, "
        "done in about 35 s",
        id="at the running limit",
    ),
    pytest.param(
        job("queued", position=3, wait="paused"),
        {},
        "#3 in the queue",
        id="paused: the notice says it, not each job",
    ),
    pytest.param(job("queued", wait="user_paused"), {}, "Queued", id="this user paused"),
    pytest.param(
        job("held", detail="no connected GPU has node types Foo"),
        {},
        "Held: no connected GPU has node types Foo",
        id="held once",
    ),
    pytest.param(
        job("starting", worker="ep.0", detail="GPU starting, usually about 90 s", eta_finish=130),
        {},
        "Starting on ep.0: GPU starting, usually about 90 s · about 2 min left",
        id="a cold start",
    ),
    pytest.param(
        job("starting", worker="sim-1", detail="loading models"),
        {},
        "Starting on sim-1: loading models",
        id="starting",
    ),
    pytest.param(job("failed", detail="out of memory"), {}, "Failed: out of memory", id="failed"),
    pytest.param(
        job("cancelled", detail="by the instructor"),
        {},
        "Cancelled by the instructor",
        id="cancelled by the instructor",
    ),
    pytest.param(job("cancelled"), {}, "Cancelled", id="cancelled"),
    pytest.param(
        job("running", worker="sim-1", progress={"value": 6, "max": 8}),
        {"progress": {"value": 7, "max": 8}},
        "Running on sim-1 · 88% (7/8)",
        id="the live progress frame wins over the pushed one",
    ),
]


async def test_each_phrase_is_built_once_from_its_parts(page: Page) -> None:
    said = await table(page, "sentence", [(p.values[0], p.values[1]) for p in SENTENCES])
    assert said == [p.values[2] for p in SENTENCES]
    for sentence in said:
        for part in ("Done", "Running", "sim-1", "Held", "in the queue", "paused"):
            assert sentence.count(part) <= 1, sentence


ABOUT = [(None, ""), (0, "a few seconds"), (4.9, "a few seconds"), (42, "about 40 s"),
         (57, "about 55 s"), (58, "about 1 min"), (100, "about 2 min"), (3599, "about 1 h"),
         (3600 + 7 * 60, "about 1 h 7 min")]  # fmt: skip


async def test_about_rounds_as_people_say_it(page: Page) -> None:
    said = await table(page, "about", [(seconds,) for seconds, _ in ABOUT])
    assert said == [words for _, words in ABOUT]


NOTICES = [
    ({"paused": True}, "Queue paused by the instructor"),
    ({"paused": True, "user_paused": True}, "The instructor paused your jobs: they wait until "
     "you are resumed"),
    ({"paused": False}, ""),
]  # fmt: skip


async def test_a_pause_is_said_once_for_the_panel(page: Page) -> None:
    said = await table(page, "notice", [(status,) for status, _ in NOTICES])
    assert said == [notice for _, notice in NOTICES]


WEIRD = {"prompt_id": "a", "status": "weird", "eta_start": "soon", "wait": "nap"}
BAD: list[Any] = [
    None,
    [],
    "x",
    {"jobs": "no"},
    {"jobs": [None, 3, {"prompt_id": 5}]},
    {"jobs": [WEIRD]},
]


async def test_a_status_of_the_wrong_shape_never_throws(page: Page) -> None:
    said = await page.evaluate(
        """async (raws) => {
            const m = await import('/lib/status.js');
            return raws.map((raw) => {
                const s = m.normalizeStatus(raw);
                return [s, s.jobs.map((j) => m.jobSentence(j))];
            });
        }""",
        BAD,
    )
    for status, sentences in said:
        assert all(isinstance(s, str) for s in sentences)
        assert all(j["etaStart"] is None and j["wait"] is None for j in status["jobs"])
