"""The job state machine as a table (the Lua scripts are held to it in
tests/integration/store/test_lifecycle.py)."""

from __future__ import annotations

import pytest

from queue_manager.core.jobs import JobStatus
from queue_manager.core.lifecycle import Action, next_status

S = JobStatus


@pytest.mark.parametrize(
    ("status", "action", "attempts", "expected"),
    [
        (S.QUEUED, Action.CLAIM, 0, S.RUNNING),
        (S.QUEUED, Action.CANCEL, 0, S.CANCELLED),
        (S.QUEUED, Action.COMPLETE, 0, None),
        (S.QUEUED, Action.EXPIRE, 0, None),
        (S.RUNNING, Action.COMPLETE, 1, S.COMPLETED),
        (S.RUNNING, Action.FAIL, 1, S.FAILED),
        (S.RUNNING, Action.CANCEL, 1, S.CANCELLED),
        (S.RUNNING, Action.EXPIRE, 1, S.QUEUED),
        (S.RUNNING, Action.EXPIRE, 2, S.QUEUED),
        (S.RUNNING, Action.EXPIRE, 3, S.FAILED),
        (S.RUNNING, Action.CLAIM, 1, None),
        *[(final, a, 1, None) for final in (S.COMPLETED, S.FAILED, S.CANCELLED) for a in Action],
    ],
)
def test_each_status_and_action_lead_where_the_table_says(
    status: S, action: Action, attempts: int, expected: S | None
) -> None:
    assert next_status(status, action, attempts=attempts, max_attempts=3) == expected
