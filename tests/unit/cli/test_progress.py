"""Progress on stderr: a line per tenth into a log, redrawn in place (not too often) on a
terminal, and the final count always shown."""

from __future__ import annotations

import io

from queue_manager.cli.progress import ProgressPrinter
from queue_manager.storage.export_plan import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_into_a_log_a_line_per_tenth_and_the_final_count() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out)
    for done in range(0, 101, 4):
        printer.update(Progress(done // 51, 2, done, 100))  # the last file not done yet
    printer.update(Progress(2, 2, 100, 100))
    printer.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 10%, 20%, ... 100%, then the files done
    assert lines[0] == "0/2 files, 12 B of 100 B (12%)"
    assert lines[-1] == "2/2 files, 100 B of 100 B (100%)"


def test_on_a_terminal_it_redraws_in_place_at_most_every_fifth_of_a_second() -> None:
    now = [0.0]
    out = Terminal()
    printer = ProgressPrinter(out, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 0.05
        printer.update(Progress(0, 1, i, 10))
    printer.update(Progress(1, 1, 10, 10))
    printer.finish()
    text = out.getvalue()
    assert text.count("\r") == 4  # at 0, 0.2, 0.4 s, and the final count
    assert text.endswith("\r1/1 files, 10 B of 10 B (100%)\x1b[K\n")


def test_nothing_done_shows_nothing() -> None:
    out = io.StringIO()
    ProgressPrinter(out).finish()
    assert out.getvalue() == ""
