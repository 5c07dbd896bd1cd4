"""How many cases each fuzz target ran: counted where the request is sent, printed at the end of
the run (`conftest.pytest_terminal_summary`) for the issue's table of figures."""

from __future__ import annotations

from collections import Counter

CASES: Counter[str] = Counter()


def count(target: str) -> None:
    CASES[target] += 1
