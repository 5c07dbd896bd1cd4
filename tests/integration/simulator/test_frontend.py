"""The simulator's `front_end_root` (ComfyUI's `--front-end-root`): the page at `/` and its files
below it, with ComfyUI's cache headers; without it `/` stays a plain 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.simulator import serve_simulator
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.serve import parser

INDEX = '<!doctype html><script type="module" src="./assets/index-abc.js"></script>'


@pytest.fixture
def front_end(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc.js").write_text("console.log('page')")
    (root / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "secret.txt").write_text("outside the root")
    return root


@pytest.fixture
async def with_page(tmp_path: Path, front_end: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = SimulatorConfig(step_delay=0, front_end_root=front_end)
    async with (
        serve_simulator(tmp_path / "sim", config) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as client,
    ):
        yield client


async def test_index_html_is_served_at_the_root_and_never_kept(
    with_page: httpx.AsyncClient,
) -> None:
    r = await with_page.get("/")
    assert r.status_code == 200
    assert r.text == INDEX
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store, must-revalidate"
    assert r.headers["pragma"] == "no-cache"


async def test_assets_are_served_below_the_root_with_comfyuis_cache_rules(
    with_page: httpx.AsyncClient,
) -> None:
    script = await with_page.get("/assets/index-abc.js")
    assert script.status_code == 200
    assert script.text == "console.log('page')"
    assert "javascript" in script.headers["content-type"]
    assert script.headers["cache-control"] == "no-cache"
    image = await with_page.get("/assets/logo.png")
    assert image.status_code == 200
    assert image.headers["cache-control"] == "public, max-age=86400"
    assert (await with_page.head("/assets/logo.png")).status_code == 200


async def test_the_api_still_wins_and_nothing_outside_the_root_is_served(
    with_page: httpx.AsyncClient,
) -> None:
    features = await with_page.get("/api/features")
    assert features.status_code == 200 and "supports_preview_metadata" in features.json()
    for path in ("/assets/missing.js", "/../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"):
        r = await with_page.get(path)
        assert r.status_code == 404, path
        assert r.content == b""


async def test_without_a_front_end_root_the_root_is_a_plain_404(tmp_path: Path) -> None:
    async with (
        serve_simulator(tmp_path / "sim", SimulatorConfig(step_delay=0)) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as client,
    ):
        for path in ("/", "/index.html", "/assets/index-abc.js"):
            r = await client.get(path)
            assert r.status_code == 404, path
            assert r.content == b""


def test_the_simulator_command_takes_a_front_end_root() -> None:
    args = parser().parse_args(["--front-end-root", "web"])
    assert args.front_end_root == Path("web")
    assert parser().parse_args([]).front_end_root is None
