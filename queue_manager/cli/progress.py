"""Progress of a long command on stderr: files and bytes done."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from queue_manager.storage.export_plan import Progress, progress_line

TTY_EVERY = 0.2  # seconds between redraws on a terminal


class ProgressPrinter:
    """Files and bytes done, on stderr: redrawn in place on a terminal, else a line per 10%;
    the final count once more at the end."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._tty = stream.isatty()
        self._last = -TTY_EVERY
        self._tenth = 0
        self._latest: Progress | None = None
        self._shown: Progress | None = None

    def update(self, p: Progress) -> None:
        self._latest = p
        if self._tty:
            now = self._clock()
            if now - self._last >= TTY_EVERY:
                self._last = now
                self._show(p)
            return
        tenth = 10 if p.bytes_total == 0 else p.bytes_done * 10 // p.bytes_total
        if tenth > self._tenth:
            self._tenth = tenth
            self._show(p)

    def finish(self) -> None:
        if self._latest is not None and self._latest != self._shown:
            self._show(self._latest)
        if self._tty and self._shown is not None:
            self._stream.write("\n")
            self._stream.flush()

    def _show(self, p: Progress) -> None:
        line = progress_line(p)
        self._stream.write("\r" + line + "\x1b[K" if self._tty else line + "\n")
        self._stream.flush()
        self._shown = p
