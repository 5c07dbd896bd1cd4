"""Where a participant's job stands, in words the workshop extension shows (pure).

The stock ComfyUI page only knows "pending" and "running"; in a shared room the participant
also wants their true place under the fair policy and what the job is waiting for.
"""

from __future__ import annotations

from typing import Any

from queue_manager.core.jobs import Job, JobStatus


def phase(job: Job, position: int | None, paused: bool) -> dict[str, Any]:
    """One job's entry of the extension's status message."""
    progress = job.progress.model_dump(include={"value", "max"}) if job.progress else None
    entry: dict[str, Any] = {
        "prompt_id": job.id,
        "status": job.status.value,
        "position": position,
        "detail": "",
        "worker": job.worker,
        "progress": progress,
    }
    if job.status is JobStatus.QUEUED:
        if job.hold:
            entry.update(status="held", detail=job.hold[:1].upper() + job.hold[1:])
        elif paused:
            entry["detail"] = "The instructor has paused the queue"
        elif position == 1:
            entry["detail"] = "Next to run"
        elif position is not None:
            entry["detail"] = f"#{position} in the queue"
        else:
            entry["detail"] = "Waiting for your running job to finish"
    elif job.status is JobStatus.RUNNING:
        if job.started_at is None and job.phase:
            entry.update(status="starting", detail=job.phase)
        elif job.started_at is None:
            entry.update(status="starting", detail=f"Starting on {job.worker} (loading models)")
        else:
            entry["detail"] = f"Running on {job.worker}"
    elif job.status is JobStatus.COMPLETED:
        entry["detail"] = "Done"
    elif job.status is JobStatus.FAILED:
        entry["detail"] = f"Failed: {job.error.message if job.error else 'unknown error'}"
    else:
        reason = job.error.message if job.error else ""
        entry["detail"] = "Cancelled by the instructor" if "instructor" in reason else "Cancelled"
    return entry
