"""`comfy-workshop rehearse --browsers`: a stand-in participant in a real Chromium page logs in,
loads the rehearsal's workflow, presses Run and sees its image, next to one over the protocol."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pages import check_chromium
from tests.support.workshop import start_workshop, stop_workshop

pytestmark = pytest.mark.slow


def test_a_rehearsal_with_a_browser_participant_sees_every_image(tmp_path: Path) -> None:
    check_chromium()
    # Jobs of about a second, as on a GPU. With a zero-delay simulator (a job ends ~0.2 s after
    # Run) the page once in four full runs did not fetch the finished image; the likely cause,
    # not yet verified, is the job ending before the page has read the answer to its own Run
    # (see the issue 14 note).
    proc, workshop = start_workshop(tmp_path / "data", users=1, workers=1, step_delay=0.05)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "queue_manager", "rehearse", workshop.url,
             "--users", "2", "--browsers", "1", "--jobs-per-user", "1",
             "--data", str(workshop.data)],
            capture_output=True, text=True, timeout=110,
        )  # fmt: skip
    finally:
        stop_workshop(proc)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 participants (1 in Chromium) x 1 jobs" in done.stdout
    assert "2 of 2 jobs gave an image" in done.stdout
    assert re.search(r"rehearsal-[0-9a-f]{4}-001\s+browser\s+1/1\s+[\d.]+ s", done.stdout)
    assert re.search(r"rehearsal-[0-9a-f]{4}-002\s+socket\s+1/1\s+[\d.]+ s", done.stdout)
    assert "opening the page" in done.stderr
