"""The policy as a table: snapshots in, claim order out."""

from __future__ import annotations

import pytest

from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Lane
from queue_manager.core.scheduling import (
    LaneSnapshot,
    Mode,
    QueuedJob,
    QueueSnapshot,
    UserQueue,
    claim_order,
    positions,
)

NEVER = -1e15


def uq(user: str, served: float, *jobs: tuple[str, int]) -> UserQueue:
    return UserQueue(UserId(user), served, tuple(QueuedJob(JobId(j), s) for j, s in jobs))


def snap(
    *lanes: tuple[Lane, tuple[UserQueue, ...]],
    mode: Mode = Mode.FAIR,
    front: tuple[tuple[str, str], ...] = (),
    paused: frozenset[str] = frozenset(),
) -> QueueSnapshot:
    return QueueSnapshot(
        mode=mode,
        front=tuple((JobId(j), UserId(u)) for j, u in front),
        lanes=tuple(LaneSnapshot(lane, users) for lane, users in lanes),
        paused_users=frozenset(UserId(p) for p in paused),
    )


A10 = uq("a", 5, *((f"a{i}", i) for i in range(1, 11)))
B1 = uq("b", NEVER + 11, ("b1", 11))

CASES = [
    pytest.param(
        snap((Lane.NORMAL, (A10, B1))),
        ["b1", *[f"a{i}" for i in range(1, 11)]],
        id="a newcomer goes before a user already served",
    ),
    pytest.param(
        snap((Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)), uq("b", 2, ("b1", 3), ("b2", 4))))),
        ["a1", "b1", "a2", "b2"],
        id="round robin alternates users, FIFO inside each",
    ),
    pytest.param(
        snap(
            (Lane.INSTRUCTOR, (uq("teacher", 9, ("t1", 9)),)),
            (Lane.NORMAL, (uq("a", 1, ("a1", 1)),)),
        ),
        ["t1", "a1"],
        id="instructor lane first",
    ),
    pytest.param(
        snap(
            (Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)), uq("b", 2, ("b1", 3)))),
            front=(("b1", "b"), ("a2", "a")),
        ),
        ["b1", "a2", "a1"],
        id="front jobs first, most recently moved first",
    ),
    pytest.param(
        snap(
            (Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 4)), uq("b", 2, ("b1", 2), ("b2", 3)))),
            mode=Mode.FIFO,
        ),
        ["a1", "b1", "b2", "a2"],
        id="fifo mode: oldest first whoever owns it",
    ),
    pytest.param(
        snap(
            (Lane.NORMAL, (uq("a", 1, ("a1", 1)), uq("b", 2, ("b1", 2)))), paused=frozenset({"a"})
        ),
        ["b1"],
        id="paused users get no position",
    ),
    pytest.param(
        snap(
            (Lane.HIGH, (uq("a", 1, ("h1", 1)),)),
            (Lane.NORMAL, (uq("a", 1, ("a1", 2)), uq("b", 3, ("b1", 3)))),
        ),
        ["h1", "b1", "a1"],
        id="being served in a higher lane counts as served in the lower one",
    ),
    pytest.param(snap((Lane.LOW, ())), [], id="empty"),
]


@pytest.mark.parametrize(("snapshot", "expected"), CASES)
def test_claim_order_follows_the_policy(snapshot: QueueSnapshot, expected: list[str]) -> None:
    assert claim_order(snapshot) == expected


def test_newcomer_is_among_the_next_two_even_behind_a_long_backlog() -> None:
    order = claim_order(snap((Lane.NORMAL, (A10, B1))))
    assert "b1" in order[:2]


def test_positions_are_one_based() -> None:
    assert positions(snap((Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)),)))) == {
        "a1": 1,
        "a2": 2,
    }
