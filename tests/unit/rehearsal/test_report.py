"""The report as text and as one offline HTML file."""

from __future__ import annotations

import re
from dataclasses import replace

from queue_manager.rehearsal.page import html_report
from queue_manager.rehearsal.report import Results, labels, text_report
from queue_manager.rehearsal.stats import Busy, JobRun, Problem, memory

USERS = ("rehearsal-ab12-001", "rehearsal-ab12-002")


def job(user: str, number: int, ttl: float, started: float, worker: str) -> JobRun:
    return JobRun(user, number, "socket", submitted=0.0, image=ttl, prompt_id=f"{user}-{number}",
                  queued=0.0, started=started, finished=started + 1.0, worker=worker)  # fmt: skip


def results(**changes: object) -> Results:
    jobs = (
        job(USERS[0], 1, 2.0, 1.0, "gpu-1"),
        job(USERS[1], 1, 3.0, 2.0, "gpu-2"),
        job(USERS[0], 2, 4.0, 3.0, "gpu-1"),
        job(USERS[1], 2, 5.0, 4.0, "gpu-2"),
    )
    found = Results(
        url="http://127.0.0.1:8188", users=USERS, jobs_per_user=2, browsers=1,
        workflow="built-in text to image", wall=6.0, jobs=jobs, problems=(),
        busy=(Busy("gpu-1", 2, 2.0, 5.0), Busy("gpu-2", 2, 2.0, 5.0)),
        memory=memory([(0.0, 100e6), (1.0, 150e6), (2.0, 110e6)]),
        accounts="2 made (rehearsal-ab12-001 .. rehearsal-ab12-002), removed",
    )  # fmt: skip
    return replace(found, **changes)  # type: ignore[arg-type]


def test_the_text_report_gives_every_figure() -> None:
    text = text_report(results())
    assert "2 participants (1 in Chromium) x 2 jobs" in text
    assert "4 of 4 jobs gave an image" in text
    assert re.search(r"all jobs\s+n=4\s+p50\s+3\.5 s\s+p90\s+4\.7 s\s+max\s+5\.0 s", text)
    assert re.search(r"rehearsal-ab12-001\s+socket\s+2/2\s+2\.0 s, 4\.0 s", text)
    assert "001 002 | 001 002" in text
    assert "round-robin respected" in text
    assert re.search(r"gpu-1\s+2 jobs\s+busy\s+2\.0 s of 5\.0 s\s+\(40%\)", text)
    assert "start 100.0 MB, peak 150.0 MB, end 110.0 MB (+10.0 MB)" in text
    assert "Errors\n  none" in text
    assert "2 made" in text


def test_unfairness_errors_and_a_stop_are_said() -> None:
    jobs = (
        job(USERS[0], 1, 2.0, 1.0, "gpu-1"),
        job(USERS[0], 2, 3.0, 2.0, "gpu-1"),
        job(USERS[1], 1, 4.0, 3.0, "gpu-1"),
        replace(job(USERS[1], 2, 0.0, 9.0, "gpu-1"), problem=Problem("timeout", USERS[1], "late")),
    )
    problems = (Problem("timeout", USERS[1], "job 2: no image after 5 s"),
                Problem("socket", USERS[0], "socket dropped"))  # fmt: skip
    text = text_report(results(jobs=jobs, problems=problems, interrupted=True))
    assert "STOPPED EARLY" in text
    assert "NOT round-robin: rehearsal-ab12-001 got 2 jobs ahead of rehearsal-ab12-002" in text
    assert "Errors (2)\n  socket (1):\n    rehearsal-ab12-001: socket dropped" in text
    assert "timeout (1):\n    rehearsal-ab12-002: job 2: no image after 5 s" in text
    assert re.search(r"rehearsal-ab12-002\s+socket\s+1/2\s+4\.0 s, x", text)


def test_what_was_not_measured_is_said_with_why() -> None:
    note = "GPU busy time ... need the instructor's login"
    text = text_report(results(busy=(), memory=None, notes=(note,)))
    assert "GPU busy time\n  not known (see below)" in text
    assert "Queue manager memory\n  not known (see below)" in text
    assert f"Not measured\n  {note}" in text


def test_labels_shorten_numbered_names_only_when_they_share_a_prefix() -> None:
    assert labels(["r-001", "r-002"]) == {"r-001": "001", "r-002": "002"}
    assert labels(["alice", "user002"]) == {"alice": "alice", "user002": "user002"}
    assert labels(["a1", "b2"]) == {"a1": "a1", "b2": "b2"}


def test_the_html_report_is_one_offline_file_with_plots() -> None:
    page = html_report(results(url="http://x/<script>"))
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 3  # jobs per GPU, time to image, memory
    assert page.count("<rect") == 4 and page.count("<circle") == 4
    assert "<polyline" in page
    assert "<script" not in page  # escaped, and no script of its own
    assert "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing fetched from elsewhere
    assert "round-robin respected" in page  # the text report travels along


def test_the_html_report_leaves_out_plots_it_has_no_data_for() -> None:
    page = html_report(results(jobs=(), busy=(), memory=None))
    assert "<svg" not in page
