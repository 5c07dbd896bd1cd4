"""The job state machine, as data.

    queued --claim--> running --complete--> completed
       |                 |----fail-------> failed
       |                 |----expire-----> queued   (lease ran out or worker lost; attempts left)
       |                 |----expire-----> failed   (attempt limit reached: a poison job)
       |--reject--> failed                   (its prompt fails validation before any GPU runs it)
       +--cancel--> cancelled <--cancel--+

The Lua scripts in `lua/` perform these transitions atomically in Redis; `tests/test_lifecycle.py`
checks every (state, action) pair of the scripts against this table.
"""

from __future__ import annotations

import enum

from queue_manager.core.jobs import JobStatus


class Action(enum.StrEnum):
    CLAIM = "claim"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REJECT = "reject"  # a queued prompt fails validation once a GPU's catalogue is known


_S = JobStatus
TRANSITIONS: dict[tuple[JobStatus, Action], JobStatus] = {
    (_S.QUEUED, Action.CLAIM): _S.RUNNING,
    (_S.QUEUED, Action.CANCEL): _S.CANCELLED,
    (_S.QUEUED, Action.REJECT): _S.FAILED,
    (_S.RUNNING, Action.COMPLETE): _S.COMPLETED,
    (_S.RUNNING, Action.FAIL): _S.FAILED,
    (_S.RUNNING, Action.CANCEL): _S.CANCELLED,
    (_S.RUNNING, Action.EXPIRE): _S.QUEUED,
}


def next_status(
    status: JobStatus, action: Action, *, attempts: int, max_attempts: int
) -> JobStatus | None:
    """The state after `action`, or None when the action is not allowed from `status`.

    `attempts` counts claims so far (the running attempt included). An expired lease sends the
    job back to the queue only while attempts remain; after that the job is failed for good, so
    one job that kills workers cannot keep the GPUs busy forever.
    """
    target = TRANSITIONS.get((status, action))
    if target is _S.QUEUED and attempts >= max_attempts:
        return _S.FAILED
    return target
