"""`comfy-workshop rehearse` as an operator runs it, a real process against a real local
`comfy-workshop up` (simulated GPUs): the report's figures, the accounts it made gone again
(also after Ctrl-C), and refusals in one line that says what to do."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.cli.redis_server import free_port
from tests.support.cli import run_cli
from tests.support.workshop import Workshop, start_workshop, stop_workshop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    data = tmp_path_factory.mktemp("rehearse") / "data"
    proc, found = start_workshop(data, users=2, workers=2, step_delay=0.02)
    try:
        yield found
    finally:
        stop_workshop(proc)


def rehearse(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "queue_manager", "rehearse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CW_DATA_DIR": "/nonexistent"},
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def accounts(workshop: Workshop) -> str:
    listed = run_cli(dict(os.environ), "users", "list", "--data", str(workshop.data))
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def no_rehearsal_left(workshop: Workshop) -> None:
    assert "rehearsal-" not in accounts(workshop)
    outputs = workshop.data / "outputs"
    assert not [p.name for p in outputs.iterdir() if p.name.startswith("rehearsal-")]


def test_a_rehearsal_reports_its_figures_and_removes_the_accounts_it_made(
    workshop: Workshop, tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    args = ("--users", "3", "--jobs-per-user", "2", "--data", str(workshop.data))
    code, out, err = finish(rehearse(workshop.url, *args, "--html", str(html)))

    assert code == 0, out + err
    assert "Traceback" not in err
    assert "3 participants x 2 jobs, workflow: built-in text to image" in out
    assert "6 of 6 jobs gave an image" in out
    assert re.search(r"all jobs\s+n=6\s+p50\s+[\d.]+ s\s+p90\s+[\d.]+ s\s+max\s+[\d.]+ s", out)
    names = re.findall(r"^    (rehearsal-[0-9a-f]{4}-00[123])\s+socket\s+2/2 ", out, re.M)
    assert len(names) == 3, out
    # the run order: each round serves each participant once
    order = re.search(r"^Run order.*\n  (.*)$", out, re.M)
    assert order is not None
    rounds = [r.split() for r in order.group(1).split(" | ")]
    assert sorted(rounds[0]) == ["001", "002", "003"] and sorted(rounds[1]) == sorted(rounds[0])
    assert "fair: round-robin respected" in out, out
    busy = re.findall(
        r"^  (sim-\d)\s+(\d+) jobs\s+busy\s+[\d.]+ s of [\d.]+ s\s+\(\d+%\)$", out, re.M
    )
    assert sorted(w for w, _ in busy) == ["sim-1", "sim-2"], out
    assert sum(int(n) for _, n in busy) == 6
    assert re.search(r"start [\d.]+ MB, peak [\d.]+ MB, end [\d.]+ MB", out)
    assert "Errors\n  none" in out
    assert f"3 made ({names[0]} .. {names[2]}), removed with their files at the end" in out
    assert "<svg" in html.read_text()
    assert "queued 1/2" in err  # the live progress, as plain lines off a terminal
    no_rehearsal_left(workshop)


def test_ctrl_c_stops_it_cleans_up_and_still_reports(workshop: Workshop) -> None:
    process = rehearse(workshop.url, "--users", "2", "--jobs-per-user", "8",
                       "--data", str(workshop.data))  # fmt: skip
    assert process.stderr is not None
    seen = ""
    while "queued 1/8" not in seen:  # the participants are at work
        line = process.stderr.readline()
        assert line, f"ended before queueing: {seen}"
        seen += line
    process.send_signal(signal.SIGINT)
    code, out, err = finish(process)

    assert code == 130, out + err
    assert "Traceback" not in seen + err
    assert "STOPPED EARLY (Ctrl-C)" in out
    assert "removed with their files at the end" in out
    no_rehearsal_left(workshop)


def test_too_few_accounts_in_the_credentials_file_is_refused(
    workshop: Workshop, tmp_path: Path
) -> None:
    listed = tmp_path / "few.csv"
    with listed.open("w", newline="") as fh:
        rows = [["user", "role", "password"], ["user001", "participant", "x" * 12]]
        csv.writer(fh).writerows(rows)
    code, out, err = finish(rehearse(workshop.url, "--users", "2", "--credentials", str(listed)))
    assert code == 1
    assert out == ""
    assert err.strip() == (
        f"comfy-workshop rehearse: {listed} lists 1 participants, fewer than --users 2: give a "
        "smaller --users, a longer file, or an instructor login to make accounts"
    )


def test_a_wrong_password_says_to_check_the_credentials(workshop: Workshop, tmp_path: Path) -> None:
    listed = tmp_path / "wrong.csv"
    listed.write_text("user,role,password\nuser001,participant,not-the-password\n")
    code, _, err = finish(rehearse(workshop.url, "--users", "1", "--credentials", str(listed)))
    assert code == 1
    assert "wrong name or password for user001: check the credentials" in err
    assert "Traceback" not in err


def test_an_unreachable_workshop_says_what_to_check() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = finish(rehearse(url, "--users", "1"))
    assert code == 1
    assert err.startswith(f"comfy-workshop rehearse: cannot reach the workshop at {url}")
    assert "is it running (comfy-workshop up)" in err
    assert "Traceback" not in err
