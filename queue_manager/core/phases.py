"""Where a participant's job stands, as the parts the workshop extension builds its sentence
from (pure).

The stock ComfyUI page only knows "pending" and "running"; in a shared room the participant
also wants their true place under the fair policy, when it will start and finish, why others
go first, and what the job waits for. Each fact is given once, in its own field, and the page
builds one sentence from them: the worker is named once (`worker`), the status word is never
repeated in `detail`, and a pause is a flag (`wait`) the page says once for all jobs.

`detail` is the one fact the status does not say: the hold reason of a held job, the start-up
phase of a starting one ("GPU starting, usually about 90 s"), the error of a failed one, who
cancelled a cancelled one; empty otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from queue_manager.core.eta import Estimate
from queue_manager.core.jobs import JobHead, JobStatus

_HELD_PREFIX = "held: "  # `requirements.hold_reason` says it; the page says "Held" itself
LOADING = "loading models"


class Wait(enum.StrEnum):
    """What holds a queued job back, besides the jobs ahead of it."""

    PAUSED = "paused"  # the instructor paused the whole queue
    USER_PAUSED = "user_paused"  # the instructor paused this participant
    OWN_JOB = "own_job"  # the participant runs as many jobs as they may at once


@dataclass(frozen=True)
class Standing:
    """The room's facts about one participant, the same for all their jobs."""

    paused: bool = False
    user_paused: bool = False
    at_limit: bool = False

    @property
    def wait(self) -> Wait | None:
        if self.user_paused:
            return Wait.USER_PAUSED
        if self.paused:
            return Wait.PAUSED
        return Wait.OWN_JOB if self.at_limit else None


def phase(
    job: JobHead,
    position: int | None,
    standing: Standing,
    eta: Estimate | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One job's entry of the extension's status message."""
    progress = job.progress.model_dump(include={"value", "max"}) if job.progress else None
    entry: dict[str, Any] = {
        "prompt_id": job.id,
        "status": job.status.value,
        "position": position,
        "detail": "",
        "worker": job.worker,
        "progress": progress,
        "wait": None,
        "reason": None,
        "eta_start": None,
        "eta_finish": None,
    }
    if job.status is JobStatus.QUEUED:
        entry.update(_queued(job, position, standing, eta, reason))
    elif job.status is JobStatus.RUNNING:
        entry.update(_running(job, eta))
    else:
        entry["detail"] = _ended(job)
    return entry


def _queued(
    job: JobHead, position: int | None, standing: Standing, eta: Estimate | None, reason: str | None
) -> dict[str, Any]:
    if job.hold:
        return {"status": "held", "detail": job.hold.removeprefix(_HELD_PREFIX)}
    wait = standing.wait
    shown: dict[str, Any] = {"wait": wait.value if wait else None}
    if position is not None and position > 1:
        shown["reason"] = reason
    if wait in (Wait.PAUSED, Wait.USER_PAUSED) or eta is None:
        return shown  # nothing starts while paused: no time to give
    return shown | {"eta_start": _seconds(eta.start), "eta_finish": _seconds(eta.finish)}


def _running(job: JobHead, eta: Estimate | None) -> dict[str, Any]:
    shown: dict[str, Any] = {"eta_finish": _seconds(eta.finish) if eta else None}
    if job.started_at is None:
        shown.update(status="starting", detail=job.phase or LOADING)
    return shown


def _ended(job: JobHead) -> str:
    if job.status is JobStatus.COMPLETED:
        return ""
    if job.status is JobStatus.FAILED:
        return job.error.message if job.error else "unknown error"
    reason = job.error.message if job.error else ""
    return "by the instructor" if "instructor" in reason else ""


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
