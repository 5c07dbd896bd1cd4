"""Why others go first, as a table: snapshots in, the reason a participant reads out."""

from __future__ import annotations

import pytest

from queue_manager.core.ahead import ahead_reason
from queue_manager.core.ids import JobId
from queue_manager.core.jobs import Lane
from queue_manager.core.scheduling import Mode, QueueSnapshot
from tests.unit.core.test_scheduling import NEVER, snap, uq

REASONS = [
    pytest.param(
        snap(
            (
                Lane.NORMAL,
                (
                    uq("a", 5, ("a1", 1)),
                    uq("b", NEVER + 7, ("b1", 7)),
                    uq("c", NEVER + 8, ("c1", 8)),
                    uq("d", NEVER + 9, ("d1", 9)),
                ),
            )
        ),
        "a1",
        "3 people who have not had a turn yet go first",
        id="newcomers",
    ),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 5, ("a1", 1)), uq("b", NEVER + 7, ("b1", 7))))),
        "a1",
        "1 person who has not had a turn yet goes first",
        id="one newcomer",
    ),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 5, ("a1", 1)), uq("b", 3, ("b1", 7))))),
        "a1",
        "1 person whose last turn came before yours goes first",
        id="someone served before",
    ),
    pytest.param(
        snap(
            (
                Lane.NORMAL,
                (uq("a", 5, ("a1", 1)), uq("b", 3, ("b1", 7)), uq("c", NEVER + 8, ("c1", 8))),
            )
        ),
        "a1",
        "1 person who has not had a turn yet and 1 whose last turn came before yours go first",
        id="both",
    ),
    pytest.param(
        snap((Lane.HIGH, (uq("b", 3, ("h1", 2)),)), (Lane.NORMAL, (uq("a", 1, ("a1", 1)),))),
        "a1",
        "1 job with a higher priority goes first",
        id="a higher lane",
    ),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 1, ("a1", 1)), uq("b", 3, ("b1", 2)))), front=(("b1", "b"),)),
        "a1",
        "1 job moved to the front by the instructor goes first",
        id="moved to the front",
    ),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)),))),
        "a2",
        None,
        id="only my own jobs ahead",
    ),
    pytest.param(snap((Lane.NORMAL, (uq("a", 1, ("a1", 1)),))), "a1", None, id="first"),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 1, ("a1", 3)), uq("b", NEVER + 2, ("b1", 2)))), mode=Mode.FIFO),
        "a1",
        None,
        id="fifo: arrival decides, no fairness to explain",
    ),
    pytest.param(snap((Lane.NORMAL, ())), "zz", None, id="not queued"),
]


@pytest.mark.parametrize(("snapshot", "job", "reason"), REASONS)
def test_the_reason_others_go_first(snapshot: QueueSnapshot, job: str, reason: str | None) -> None:
    assert ahead_reason(snapshot, JobId(job)) == reason
