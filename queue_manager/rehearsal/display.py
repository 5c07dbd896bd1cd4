"""The live progress of a rehearsal, on stderr (the report goes to stdout): on a terminal a
table redrawn in place (rich's Live: flicker-free redraws and column layout we need not write),
one row per participant; elsewhere (CI, a pipe) a plain line per event."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass
class Row:
    state: str = "waiting"
    via: str = "socket"
    images: int = 0
    problems: int = 0


class Board:
    """What each participant is doing. `say` is called by the participants (on the event loop);
    the screen is redrawn at most 4 times a second."""

    def __init__(
        self,
        users: list[str],
        jobs_per_user: int,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rows = {u: Row() for u in users}
        self._jobs = jobs_per_user
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._live: Live | None = None
        if stream.isatty():
            console = Console(file=stream, stderr=True)
            self._live = Live(console=console, refresh_per_second=4, transient=False,
                              get_renderable=self._render)  # fmt: skip

    def __enter__(self) -> Board:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.stop()

    def via(self, user: str, via: str) -> None:
        self._rows[user].via = via

    def say(self, user: str, state: str, *, image: bool = False, problem: bool = False) -> None:
        row = self._rows[user]
        row.state = state
        row.images += image
        row.problems += problem
        if self._live is None and (image or problem or not state.startswith("running")):
            self.line(f"{user}: {state}")

    def line(self, text: str) -> None:
        """A line of its own (plain output only; the table says it on a terminal)."""
        if self._live is None:
            self._stream.write(f"[{self._clock() - self._start:7.1f} s] {text}\n")
            self._stream.flush()

    def _render(self) -> Group:
        total = len(self._rows) * self._jobs
        images = sum(r.images for r in self._rows.values())
        problems = sum(r.problems for r in self._rows.values())
        head = Text(
            f"rehearsal: {images}/{total} images, {problems} errors, "
            f"{self._clock() - self._start:.0f} s (Ctrl-C stops and cleans up)",
            style="bold",
        )
        table = Table(box=None, padding=(0, 1), show_edge=False)
        for column in ("participant", "via", "images", "errors", "now"):
            table.add_column(column)
        for user, row in self._rows.items():
            table.add_row(user, row.via, f"{row.images}/{self._jobs}",
                          str(row.problems) if row.problems else "", row.state)  # fmt: skip
        return Group(head, table)
