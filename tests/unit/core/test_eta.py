"""The estimate plays the claim script forward: tables of rooms in, starts and finishes out."""

from __future__ import annotations

import dataclasses

import pytest

from queue_manager.core.endpoint_status import EndpointPhase, EndpointStatus
from queue_manager.core.eta import (
    UNKNOWN,
    UNMEASURED_COLD_START,
    Estimate,
    Gpu,
    Returns,
    Room,
    Running,
    cold_start_left,
    estimate,
    gpus_of,
    time_left,
)
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.runtimes import RunHistory, Sample, Shape
from queue_manager.core.scheduling import Mode, QueueSnapshot, claim_order
from queue_manager.core.workers import WorkerInfo, WorkerState
from tests.unit.core.test_scheduling import CASES, NEVER, snap, uq

NOW = 1000.0
SHORT, LONG = Shape("short", 10), Shape("long", 30)
# Every GPU runs a 10-step job in 10 s and a 30-step one in 30 s (gpu "slow": twice that).
HISTORY = RunHistory(
    exact={("slow", "short"): (Sample(10, 20.0),), ("slow", "long"): (Sample(30, 60.0),)},
    family={"short": (Sample(10, 10.0),), "long": (Sample(30, 30.0),)},
)


def gpu(name: str, ready_in: float = 0.0, takes: bool = True) -> Gpu:
    return Gpu(WorkerId(name), name.split(".")[0], ready_in, takes)


def room(
    snapshot: QueueSnapshot,
    *gpus: Gpu,
    shapes: dict[str, Shape] | None = None,
    running: tuple[Running, ...] = (),
    max_running: int = -1,
    eligible: dict[str, frozenset[str]] | None = None,
) -> Room:
    every = {j.id for lane in snapshot.lanes for u in lane.users for j in u.jobs}
    found = {JobId(j): SHORT for j in every} | {JobId(k): v for k, v in (shapes or {}).items()}
    return Room(
        snapshot=snapshot,
        gpus=gpus or (gpu("g1"),),
        running=running,
        shapes=found,
        eligible={JobId(k): frozenset(WorkerId(w) for w in v) for k, v in (eligible or {}).items()},
        max_running=max_running,
    )


def starts(r: Room, history: RunHistory = HISTORY) -> dict[str, float | None]:
    return {str(k): v.start for k, v in estimate(r, history, NOW).items()}


def run(job: str, user: str, worker: str, *, claimed: float, shape: Shape = SHORT) -> Running:
    return Running(JobId(job), UserId(user), WorkerId(worker), shape, claimed, claimed)


TWO_USERS = snap((Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)), uq("b", 2, ("b1", 3)))))

TABLE = [
    pytest.param(
        room(TWO_USERS),
        {"a1": 0, "b1": 10, "a2": 20},
        id="one gpu: the fair order, one run time after another",
    ),
    pytest.param(
        room(TWO_USERS, shapes={"a1": LONG}),
        {"a1": 0, "b1": 30, "a2": 40},
        id="each job holds the gpu for its own shape's time",
    ),
    pytest.param(
        room(TWO_USERS, gpu("g1"), gpu("g2")),
        {"a1": 0, "b1": 0, "a2": 10},
        id="two gpus take two jobs at once",
    ),
    pytest.param(
        room(TWO_USERS, gpu("g1"), gpu("g2"), max_running=1),
        {"a1": 0, "b1": 0, "a2": 10},
        id="limit one: a's second job waits for a's first",
    ),
    pytest.param(
        room(
            snap((Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)),))),
            gpu("g1"),
            gpu("g2"),
            max_running=1,
        ),
        {"a1": 0, "a2": 10},
        id="limit one: a free gpu does not run a second job of the same user",
    ),
    pytest.param(
        room(snap((Lane.NORMAL, (uq("a", 5, ("a1", 1)), uq("b", NEVER + 9, ("b1", 9)))))),
        {"b1": 0, "a1": 10},
        id="a newcomer goes first",
    ),
    pytest.param(
        room(TWO_USERS, gpu("g1"), running=(run("r", "b", "g1", claimed=NOW - 4),)),
        {"a1": 6, "b1": 16, "a2": 26},
        id="the gpu frees when its running job's time is up",
    ),
    pytest.param(
        room(
            TWO_USERS,
            gpu("g1"),
            gpu("g2"),
            max_running=1,
            running=(run("r", "a", "g2", claimed=NOW - 2),),
        ),  # a runs r: a1 waits for it
        {"b1": 0, "a1": 8, "a2": 18},
        id="a user at the limit waits for their running job even with a gpu free",
    ),
    pytest.param(
        room(TWO_USERS, gpu("g1", ready_in=60)),
        {"a1": 60, "b1": 70, "a2": 80},
        id="a cold endpoint starts first",
    ),
    pytest.param(
        room(TWO_USERS, gpu("slow")),
        {"a1": 0, "b1": 20, "a2": 40},
        id="a gpu's own run times win",
    ),
    pytest.param(
        room(
            TWO_USERS,
            gpu("g1"),
            gpu("g2"),
            eligible={"a1": frozenset({"g2"})},
            running=(run("r", "c", "g2", claimed=NOW),),
        ),
        {"a2": 0, "b1": 10, "a1": 10},
        id="a job only one gpu can run waits for it; the user's next job goes first",
    ),
    pytest.param(
        room(TWO_USERS, eligible={"b1": frozenset()}),
        {"a1": 0, "a2": 10, "b1": None},
        id="a held job: no gpu will take it",
    ),
    pytest.param(
        room(snap((Lane.NORMAL, TWO_USERS.lanes[0].users), paused=frozenset({"a"}))),
        {"b1": 0, "a1": None, "a2": None},
        id="a paused user's jobs have no time",
    ),
    pytest.param(
        room(TWO_USERS, gpu("g1", takes=False)),
        {"a1": None, "b1": None, "a2": None},
        id="no gpu takes jobs: no time",
    ),
    pytest.param(
        room(
            TWO_USERS,
            gpu("g1"),
            gpu("old", takes=False),
            running=(run("r", "a", "old", claimed=NOW),),
            max_running=1,
        ),
        {"b1": 0, "a1": 10, "a2": 20},
        id="a draining gpu finishes its job and takes no more",
    ),
    pytest.param(
        room(snap((Lane.NORMAL, TWO_USERS.lanes[0].users), front=(("a2", "a"),))),
        {"a2": 0, "b1": 10, "a1": 20},
        id="a job moved to the front goes first (and serving it stamps its user)",
    ),
    pytest.param(
        room(
            snap(
                (Lane.NORMAL, (uq("a", 1, ("a1", 1), ("a2", 2)), uq("b", 2, ("b1", 3)))),
                mode=Mode.FIFO,
            )
        ),
        {"a1": 0, "a2": 10, "b1": 20},
        id="fifo: oldest first",
    ),
]


@pytest.mark.parametrize(("the_room", "expected"), TABLE)
def test_starts_follow_the_claim_script(the_room: Room, expected: dict[str, float]) -> None:
    found = starts(the_room)
    assert {k: found[k] for k in expected} == expected


def test_a_finish_is_the_start_plus_the_run_time_there() -> None:
    found = estimate(room(TWO_USERS, shapes={"b1": LONG}), HISTORY, NOW)
    assert found[JobId("b1")] == Estimate(10, 40)


def test_running_jobs_start_now_and_finish_when_their_time_is_up() -> None:
    found = estimate(room(TWO_USERS, running=(run("r", "c", "g1", claimed=NOW - 3),)), HISTORY, NOW)
    assert found[JobId("r")] == Estimate(0.0, 7.0)


@pytest.mark.parametrize(("snapshot", "order"), CASES)
def test_one_gpu_without_limits_starts_jobs_in_claim_order(
    snapshot: QueueSnapshot, order: list[str]
) -> None:
    found = starts(room(snapshot))
    timed = sorted((t, j) for j, t in found.items() if t is not None)
    assert [j for _, j in timed] == claim_order(snapshot) == order


# -- running jobs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "the_gpu", "expected"),
    [
        pytest.param(run("r", "a", "g1", claimed=NOW - 4), gpu("g1"), 6.0, id="pull: less run"),
        pytest.param(run("r", "a", "g1", claimed=NOW - 40), gpu("g1"), 1.0, id="overdue: 1 s"),
        pytest.param(
            Running(JobId("r"), UserId("a"), WorkerId("ep.0"), SHORT, NOW - 5, None),
            gpu("ep.0", ready_in=50),
            60.0,
            id="endpoint not started: what is left of the cold start, then the run",
        ),
        pytest.param(
            Running(JobId("r"), UserId("a"), WorkerId("ep.0"), SHORT, NOW - 90, NOW - 2),
            gpu("ep.0"),
            8.0,
            id="endpoint started: counted from the start",
        ),
        pytest.param(
            Running(JobId("r"), UserId("a"), WorkerId("g1"), SHORT, NOW - 20, NOW - 20, (1, 2)),
            gpu("g1"),
            20.0,
            id="overdue with progress: ComfyUI's own progress says",
        ),
        pytest.param(
            Running(JobId("r"), UserId("a"), WorkerId("g1"), SHORT, NOW - 2, NOW - 2, (1, 2)),
            gpu("g1"),
            5.0,
            id="progress and expectation averaged",
        ),
    ],
)
def test_time_left_of_a_running_job(job: Running, the_gpu: Gpu, expected: float) -> None:
    assert time_left(job, the_gpu, HISTORY, NOW) == pytest.approx(expected)


# -- the GPUs ----------------------------------------------------------------------------------


def worker(name: str, state: WorkerState = WorkerState.ONLINE) -> WorkerInfo:
    return WorkerInfo(id=WorkerId(name), state=state, seen=NOW, joined=NOW, reports_models=False)


def status(phase: EndpointPhase, since: float = NOW, *cold: float) -> EndpointStatus:
    return EndpointStatus("ep", phase, since=since, cold_starts=cold)


@pytest.mark.parametrize(
    ("workers", "endpoints", "expected"),
    [
        pytest.param([worker("g1")], {}, [Gpu(WorkerId("g1"), "g1")], id="online worker"),
        pytest.param(
            [worker("g1", WorkerState.DRAINING), worker("g2", WorkerState.OFFLINE)],
            {},
            [Gpu(WorkerId("g1"), "g1", 0, False), Gpu(WorkerId("g2"), "g2", 0, False)],
            id="draining and offline workers take nothing new",
        ),
        pytest.param(
            [worker("ep.0"), worker("ep.1")],
            {"ep": status(EndpointPhase.COLD, NOW, 40, 60, 50)},
            [Gpu(WorkerId("ep.0"), "ep", 50.0), Gpu(WorkerId("ep.1"), "ep", 50.0)],
            id="a cold endpoint's slots wait for its typical cold start",
        ),
        pytest.param(
            [worker("ep.0")],
            {"ep": status(EndpointPhase.FAILING)},
            [Gpu(WorkerId("ep.0"), "ep", 0.0, False)],
            id="a failing endpoint takes nothing",
        ),
        pytest.param([worker("gone.0")], {}, [], id="a slot of a removed endpoint"),
    ],
)
def test_gpus_of_the_room(
    workers: list[WorkerInfo], endpoints: dict[str, EndpointStatus], expected: list[Gpu]
) -> None:
    assert list(gpus_of(workers, endpoints, NOW)) == expected


@pytest.mark.parametrize(
    ("the_status", "expected"),
    [
        (status(EndpointPhase.COLD), UNMEASURED_COLD_START),
        (status(EndpointPhase.COLD, NOW, 30), 30.0),
        (status(EndpointPhase.STARTING, NOW - 20, 30), 10.0),
        (status(EndpointPhase.STARTING, NOW - 90, 30), 1.0),
        (status(EndpointPhase.READY, NOW, 30), 0.0),
        (status(EndpointPhase.BUSY, NOW, 30), 0.0),
    ],
)
def test_cold_start_left(the_status: EndpointStatus, expected: float) -> None:
    assert cold_start_left(the_status, NOW) == expected


def test_nothing_queued_nothing_running_is_an_empty_estimate() -> None:
    assert estimate(room(snap((Lane.NORMAL, ()))), HISTORY, NOW) == {}


def test_unknown_is_no_start_and_no_finish() -> None:
    assert Estimate(None, None) == UNKNOWN


# -- participants who come back -----------------------------------------------------------

# user "c" last ran 5 s ago, served before "a" and "b": when c runs again (30 s after a
# result, the room's habit), the queue puts c's job before a's and b's second jobs.
LONG_QUEUE = snap(
    (Lane.NORMAL, (uq("a", 5, ("a1", 1), ("a2", 2), ("a3", 3)), uq("b", 6, ("b1", 4))))
)


def back(think: float | None, ago: float = 5.0, user: str = "c") -> Returns:
    shapes = {UserId(u): SHORT for u in (user, "a", "b")}
    return Returns(think, {UserId(user): ago}, {UserId(user): 1.0}, shapes)


RETURNS = [
    pytest.param(Returns(), {"a1": 0, "b1": 10, "a2": 20, "a3": 30}, id="habit unknown"),
    pytest.param(
        back(15.0),
        {"a1": 0, "b1": 10, "a2": 30, "a3": 50},
        id="an idle participant's next Run goes before the second jobs (and b's, after b1)",
    ),
    pytest.param(
        back(15.0, ago=5000.0),
        {"a1": 0, "b1": 10, "a2": 20, "a3": 30},
        id="a participant idle for long has left",
    ),
    pytest.param(
        back(100.0),
        {"a1": 0, "b1": 10, "a2": 20, "a3": 30},
        id="back after everything started: no effect",
    ),
]


@pytest.mark.parametrize(("returns", "expected"), RETURNS)
def test_participants_who_come_back_are_waited_behind(
    returns: Returns, expected: dict[str, float]
) -> None:
    the_room = dataclasses.replace(room(LONG_QUEUE), returns=returns)
    found = starts(the_room)
    assert found == expected  # their expected Runs are never estimates of their own


def test_a_paused_participant_is_not_expected_back() -> None:
    paused = snap((Lane.NORMAL, LONG_QUEUE.lanes[0].users), paused=frozenset({"c"}))
    the_room = dataclasses.replace(room(paused), returns=back(15.0))
    assert starts(the_room)["a2"] == 20


def test_a_participant_with_a_job_comes_back_after_its_end() -> None:
    # b's only job ends at 20; b runs again 5 s later, before a's third job
    queue = snap(
        (Lane.NORMAL, (uq("a", 5, ("a1", 1), ("a2", 2), ("a3", 3)), uq("b", 6, ("b1", 4))))
    )
    habit = Returns(think=5.0, shapes={UserId("b"): SHORT})
    the_room = dataclasses.replace(room(queue), returns=habit)
    assert starts(the_room) == {"a1": 0, "b1": 10, "a2": 20, "a3": 40}
