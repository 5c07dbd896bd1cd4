"""Ctrl-C in the terminal that runs `up` (SIGINT to its whole process group) stops it and every
process it started, without a traceback: while it serves pages that run jobs, and while it is
still starting."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.cli.test_supervision import kill_leftovers
from tests.integration.cli.up_process import Up, children_of, launch_up, start_up, wait_until
from tests.support.graphs import sampler

pytestmark = pytest.mark.slow


def _stopped_cleanly(up: Up) -> None:
    children = children_of(up.process.pid)
    try:
        up.ctrl_c()
        assert up.process.wait(60) == 0, up.output()
        assert "Traceback" not in up.output(), up.output()
        assert not any(c.alive() for c in children), children
    finally:
        up.stop()
        kill_leftovers(children)


def test_ctrl_c_stops_a_serving_up_and_its_children_without_a_traceback(tmp_path: Path) -> None:
    up = start_up(
        tmp_path / "data",
        tmp_path / "up.log",
        *("--users", "2", "--workers", "1", "--step-delay", "0.05"),
        own_group=True,
    )
    user, password = "user001", up.passwords()["user001"]
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Origin": up.url}
    ws_url = up.url.replace("http://", "ws://") + f"/{user}/ws"
    # A participant's page: its socket, asking for the panel's status pushes, a job running.
    with connect(ws_url, additional_headers=headers, open_timeout=30) as page:
        page.send(json.dumps({"type": "workshop.subscribe"}))
        sent = httpx.post(
            f"{up.url}/{user}/api/prompt",
            json={"prompt": sampler(200)},
            auth=(user, password),
            timeout=30,
        )
        assert sent.status_code == 200, sent.text
        wait_until(lambda: "claimed job=" in up.output(), 60, "the job to start")
        _stopped_cleanly(up)


def test_ctrl_c_while_up_is_still_starting_stops_it(tmp_path: Path) -> None:
    # Twenty accounts take a while to make (a password hash each): Ctrl-C lands meanwhile.
    up = launch_up(
        tmp_path / "data", tmp_path / "up.log", "--users", "20", "--workers", "1", own_group=True
    )
    try:
        wait_until(lambda: "session secret" in up.output(), 60, "up to start its Redis")
    except BaseException:
        up.stop()
        raise
    _stopped_cleanly(up)
