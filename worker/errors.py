"""Errors of the worker agent.

WorkerError
 +-- ManagerUnavailable   the queue manager cannot be reached (retry with backoff)
 +-- JobLost              the manager says we no longer hold the job (cancelled, requeued)
 +-- WorkerUnknown        the manager does not know this worker (removed, or Redis lost it)
 +-- ComfyUIUnavailable   the local ComfyUI cannot be reached or died mid-job
 +-- PromptRefused        ComfyUI rejected the prompt (its 400 body is kept)
"""

from __future__ import annotations

from typing import Any


class WorkerError(Exception):
    """Root of the agent's own errors."""


class ManagerUnavailable(WorkerError):
    pass


class JobLost(WorkerError):
    pass


class WorkerUnknown(WorkerError):
    pass


class ComfyUIUnavailable(WorkerError):
    pass


class PromptRefused(WorkerError):
    def __init__(self, body: dict[str, Any]) -> None:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(str(message or "ComfyUI refused the prompt"))
        self.body = body
