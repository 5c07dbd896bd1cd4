"""A GPU worker as the queue knows it: its state and what it last told us."""

from __future__ import annotations

import enum

from pydantic import BaseModel, JsonValue

from queue_manager.core.ids import JobId, WorkerId


class WorkerState(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # stopped sending heartbeats; comes back by itself when it does
    DRAINING = "draining"  # finishes its job, claims no more


# Workers whose capabilities count when deciding whether a job can run at all: an offline GPU
# may come back; a draining one will not take new work.
MAY_RUN_JOBS = frozenset({WorkerState.ONLINE, WorkerState.OFFLINE})


class WorkerInfo(BaseModel):
    id: WorkerId
    state: WorkerState
    job: JobId | None = None
    next: JobId | None = None  # handed early: waits in its ComfyUI's queue behind `job`
    seen: float
    joined: float
    done: int = 0
    failed: int = 0
    reports_models: bool
    info: dict[str, JsonValue] = {}
