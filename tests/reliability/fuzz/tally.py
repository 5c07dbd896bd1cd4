"""How many cases each fuzz target ran, and what the server answered them: counted where the
request is sent, printed at the end of the run (`conftest.pytest_terminal_summary`) for the
issue's table of figures."""

from __future__ import annotations

from collections import Counter, defaultdict

CASES: Counter[str] = Counter()
ANSWERS: defaultdict[str, Counter[int]] = defaultdict(Counter)


def count(target: str) -> None:
    """One case of `target`, about to be sent."""
    CASES[target] += 1


def answered(target: str, status: int) -> None:
    """The answer to the case of `target` just counted."""
    ANSWERS[target][status] += 1


def summary() -> list[str]:
    """One line per target: its cases and the answers it got, then the total."""
    if not CASES:
        return []
    width = max(len(target) for target in CASES)
    lines = [
        f"{target:<{width}}  {n:>6}  {_answers(target)}" for target, n in sorted(CASES.items())
    ]
    return [*lines, f"{'total':<{width}}  {sum(CASES.values()):>6}"]


def _answers(target: str) -> str:
    return " ".join(f"{status}x{n}" for status, n in sorted(ANSWERS[target].items()))
