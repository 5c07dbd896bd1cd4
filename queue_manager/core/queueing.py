"""What goes into the queue and what comes out of it: a new job as submitted, the answer to a
submission, and a claimed job as a worker gets it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from pydantic import JsonValue

from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.requirements import Requirements


@dataclass(frozen=True)
class NewJob:
    id: JobId
    user: UserId
    lane: Lane
    prompt_json: str  # the API-format prompt as the participant sent it, passed on verbatim
    requirements: Requirements
    client_id: str | None = None
    extra_data: Mapping[str, JsonValue] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # ComfyUI's outputs_to_execute, for the queue panel
    # False: accepted before any GPU catalogue was known; checked when one arrives
    validated: bool = True
    shape: str = ""  # what decides its run time (`runtimes.Shape.key`), for the ETA


@dataclass(frozen=True)
class Submitted:
    id: JobId
    seq: int  # the job's submission number (ComfyUI's `number`)
    runnable: bool  # some known worker has what it needs; else it is held
    hold: str | None = None
    # ComfyUI's partial acceptance: errors of output nodes left out of the run
    node_errors: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Claimed:
    """What a worker needs to run a job it just claimed. The prompt stays the text the
    participant sent: it goes to ComfyUI verbatim, never parsed on the dispatch path."""

    id: JobId
    user: UserId
    lane: Lane
    worker: WorkerId
    attempts: int
    client_id: str | None
    prompt_json: str
    extra_data_json: str
    created_at: float
    claimed_at: float


ClaimResult = Claimed | None


class Wakeup(Enum):
    """Why a waiting worker's inbox woke without a job."""

    WAKE = "wake"  # something may be claimable now: claim again
    STOP = "stop"  # the worker asked to end its wait (it is stopping): answer what it holds


class SignalAction(Enum):
    """What the queue manager asks of a worker about one job it holds, at once (a signal)."""

    STOP = "stop"  # cancelled: stop it (delete it from ComfyUI's queue, or interrupt it)
    BACK = "back"  # handed early and wanted back: return it if it has not started


@dataclass(frozen=True)
class Signal:
    action: SignalAction
    job: JobId

    @classmethod
    def parse(cls, item: str) -> Signal | None:
        """`<action>:<job id>` as the Lua scripts write it; None for anything else."""
        action, _, job = item.partition(":")
        try:
            return cls(SignalAction(action), JobId(job)) if job else None
        except ValueError:
            return None
