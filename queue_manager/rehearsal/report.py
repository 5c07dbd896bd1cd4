"""The rehearsal's report as text (what the command prints at the end). Pure."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from queue_manager.rehearsal.stats import (
    Busy,
    Fairness,
    JobRun,
    Memory,
    Problem,
    Spread,
    fairness,
    problems_by_kind,
    rounds,
    run_order,
    spread,
)

_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_WIDTH = 96


@dataclass(frozen=True)
class Results:
    """Everything the report says, gathered by `rehearsal.run`."""

    url: str
    users: tuple[str, ...]
    jobs_per_user: int
    browsers: int
    workflow: str
    wall: float
    jobs: tuple[JobRun, ...]
    problems: tuple[Problem, ...]
    busy: tuple[Busy, ...] = ()
    memory: Memory | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)  # what was not measured, and why
    accounts: str = ""  # what happened to the accounts
    interrupted: bool = False

    @property
    def fairness(self) -> Fairness:
        return fairness(self.jobs)

    def times(self) -> Spread | None:
        return spread(t for j in self.jobs if (t := j.time_to_image) is not None)

    def images(self) -> int:
        return sum(j.time_to_image is not None for j in self.jobs)


def labels(users: Iterable[str]) -> dict[str, str]:
    """Short names for the run order: the numbers when every name is one prefix and a number
    (`rehearsal-007` -> `007`), else the names."""
    names = list(users)
    found = [_NUMBERED.match(u) for u in names]
    if names and all(found) and len({m.group(1) for m in found if m}) == 1:
        return {u: m.group(2) for u, m in zip(names, found, strict=True) if m}
    return {u: u for u in names}


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def megabytes(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def text_report(r: Results) -> str:
    parts = [_headline(r), _times(r), _order(r), _busy(r), _memory(r), _problems(r)]
    if r.accounts:
        parts.append(f"Accounts\n  {r.accounts}")
    if r.notes:
        parts.append("Not measured\n" + "\n".join(f"  {n}" for n in r.notes))
    return "\n\n".join(parts) + "\n"


def _headline(r: Results) -> str:
    browsers = f" ({r.browsers} in Chromium)" if r.browsers else ""
    stopped = "  STOPPED EARLY (Ctrl-C): the figures cover what ran\n" if r.interrupted else ""
    return (
        f"Rehearsal of {r.url}: {len(r.users)} participants{browsers} x {r.jobs_per_user} "
        f"jobs, workflow: {r.workflow}\n{stopped}"
        f"  {r.images()} of {len(r.jobs)} jobs gave an image in {seconds(r.wall)}"
    )


def _times(r: Results) -> str:
    lines = ["Time to image (Run pressed -> image fetched)"]
    overall = r.times()
    firsts = spread(t for j in r.jobs if j.number == 1 and (t := j.time_to_image) is not None)
    lines.append(f"  all jobs    {_spread(overall)}")
    if r.jobs_per_user > 1:
        lines.append(f"  first jobs  {_spread(firsts)}")
    lines.append("  per participant:")
    by_user: dict[str, list[JobRun]] = defaultdict(list)
    for job in r.jobs:
        by_user[job.user].append(job)
    width = max((len(u) for u in r.users), default=4)
    for user in r.users:
        jobs = sorted(by_user.get(user, []), key=lambda j: j.number)
        via = jobs[0].via if jobs else "-"
        shown = ", ".join(seconds(t) if (t := j.time_to_image) is not None else "x" for j in jobs)
        ok = sum(j.time_to_image is not None for j in jobs)
        lines.append(f"    {user:<{width}}  {via:<7}  {ok}/{r.jobs_per_user}  {shown or '-'}")
    return "\n".join(lines)


def _spread(s: Spread | None) -> str:
    if s is None:
        return "no image came back"
    return f"n={s.n:<4} p50 {seconds(s.p50):>8}  p90 {seconds(s.p90):>8}  max {seconds(s.max):>8}"


def _order(r: Results) -> str:
    order = run_order(r.jobs)
    if not order:
        return "Run order\n  no job started"
    short = labels(r.users)
    text = " | ".join(" ".join(short.get(u, u) for u in rnd) for rnd in rounds(order))
    lines = ["Run order (by start; | = a participant comes again)", *_wrapped(text, "  ")]
    f = r.fairness
    if f.round_robin:
        lines.append(
            f"  fair: round-robin respected (nobody got more than {f.most_ahead} job ahead "
            "of anyone while both waited)"
        )
    else:
        lines.append(
            f"  NOT round-robin: {f.ahead} got {f.most_ahead} jobs ahead of {f.behind} while "
            f"both waited; {f.overtaken} job(s) overtaken more than once by the same person"
        )
    return "\n".join(lines)


def _wrapped(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(indent) + len(current) + 1 + len(word) > _WIDTH:
            lines.append(indent + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, indent + current] if current else lines


def _busy(r: Results) -> str:
    if not r.busy:
        why = "not known (see below)" if r.notes else "no job ran on a GPU"
        return f"GPU busy time\n  {why}"
    lines = ["GPU busy time (the rehearsal's jobs, claim to finish)"]
    width = max(len(b.worker) for b in r.busy)
    for b in r.busy:
        lines.append(
            f"  {b.worker:<{width}}  {b.jobs:>3} jobs  busy {seconds(b.seconds):>8} of "
            f"{seconds(b.wall)}  ({b.share:.0%})"
        )
    return "\n".join(lines)


def _memory(r: Results) -> str:
    m = r.memory
    if m is None:
        return "Queue manager memory\n  not known (see below)"
    grew = m.end - m.start
    return (
        "Queue manager memory (process_resident_memory_bytes)\n"
        f"  start {megabytes(m.start)}, peak {megabytes(m.peak)}, end {megabytes(m.end)} "
        f"({'+' if grew >= 0 else '-'}{megabytes(abs(grew))})"
    )


def _problems(r: Results) -> str:
    grouped = problems_by_kind(r.problems)
    if not grouped:
        return "Errors\n  none"
    lines = [f"Errors ({len(r.problems)})"]
    for kind, found in grouped.items():
        lines.append(f"  {kind} ({len(found)}):")
        lines += [f"    {p.user}: {p.message}" for p in _first(found, 10)]
        if len(found) > 10:
            lines.append(f"    ... and {len(found) - 10} more")
    return "\n".join(lines)


def _first(found: Sequence[Problem], n: int) -> Sequence[Problem]:
    return found[:n]
