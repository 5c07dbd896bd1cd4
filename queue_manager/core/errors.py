"""Every error the queue manager raises on purpose.

    QueueManagerError
     +-- JobNotFound            no such job (or not this user's: the caller must not learn which)
     +-- InvalidTransition      the job's state does not allow the action (cancel a finished job)
     +-- LeaseLost              a worker acts on a job it no longer holds (expired, cancelled)
     +-- LimitExceeded          a per-user limit refuses a submission
     +-- PromptRejected         a prompt that is malformed, too large or runnable by no worker
     |    +-- PromptInvalid     ComfyUI's own validation refused it (its 400 body travels along)
     +-- MalformedBody          a request body that is not JSON, or nested past any sane depth
     +-- WorkerNotFound         a worker that is not registered (or was removed)
     +-- WorkerUnavailable      a draining or removed worker asks for work
     +-- LeaseTokenRefused      a job's lease token used beyond its job (claim, join, another job)
     +-- UnsafePath             a file name that would leave a participant's folder
     +-- StorageLimit           a file larger than allowed
     +-- FileMissing            no such file in the user's folder
     +-- EndpointInvalid        a push endpoint's configuration the operator must correct
     +-- EndpointNotFound       no push endpoint of that name
     +-- AccountNotFound        no such account (the instructor signs out a name that is not one)
     +-- AccountInvalid         an account the instructor's API cannot make or remove as asked
     |    +-- AccountExists     the name is taken already (409)
     +-- GalleryInvalid         a gallery request that cannot be done as asked (a stale cursor,
     |                          an output that cannot be shown to everyone)
     +-- LoginThrottled         too many wrong passwords lately: wait `retry_after` seconds
     +-- SettingDefaultInvalid  a workshop default setting that is not a setting id and JSON value
     +-- UserDataError          a user-data request answered in ComfyUI's plain-text words
          +-- UserDataInvalid   not doable as asked (400)
          +-- UserDataMissing   no such file or folder (404)
          +-- UserDataExists    the target exists and overwrite=false (409)

They are mapped to HTTP status codes in exactly one place, `queue_manager.api.errors`.
"""

from __future__ import annotations

import math
from typing import Any

from queue_manager.core.ids import JobId, UserId, WorkerId


class QueueManagerError(Exception):
    """Root of the queue manager's own errors."""


class JobNotFound(QueueManagerError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(QueueManagerError):
    def __init__(self, job_id: JobId, status: str, action: str) -> None:
        super().__init__(f"job {job_id} is {status}: cannot {action} it")
        self.job_id = job_id
        self.status = status
        self.action = action


class LeaseLost(QueueManagerError):
    def __init__(self, job_id: JobId, worker_id: WorkerId, status: str) -> None:
        super().__init__(f"worker {worker_id} no longer holds job {job_id} (job is {status})")
        self.job_id = job_id
        self.worker_id = worker_id
        self.status = status


class LimitExceeded(QueueManagerError):
    def __init__(self, user: UserId, limit: int) -> None:
        super().__init__(
            f"you already have {limit} job{'s' if limit != 1 else ''} waiting, the most allowed; "
            "wait for one to finish before queueing another"
        )
        self.user = user
        self.limit = limit


class PromptRejected(QueueManagerError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromptInvalid(PromptRejected):
    """ComfyUI's validator refused the prompt: `body` is ComfyUI's own 400 answer (`error`,
    `node_errors`), which the participant's page shows node by node."""

    def __init__(self, body: dict[str, Any]) -> None:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(str(message or "the prompt is not valid"))
        self.body = body


class MalformedBody(QueueManagerError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WorkerNotFound(QueueManagerError):
    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(f"worker {worker_id} is not registered")
        self.worker_id = worker_id


class WorkerUnavailable(QueueManagerError):
    def __init__(self, worker_id: WorkerId, state: str) -> None:
        super().__init__(f"worker {worker_id} is {state}: it takes no new jobs")
        self.worker_id = worker_id
        self.state = state


class LeaseTokenRefused(QueueManagerError):
    """A lease token (`core.credentials`) may act on its own job attempt only."""

    def __init__(self, worker_id: WorkerId, why: str) -> None:
        super().__init__(f"a lease token of worker {worker_id} cannot do this: {why}")
        self.worker_id = worker_id
        self.why = why


class UnsafePath(QueueManagerError):
    """`status` keeps ComfyUI's distinction: 400 bad filename, 403 escaping subfolder, 404."""

    def __init__(self, name: str, reason: str, *, status: int = 400) -> None:
        super().__init__(f"{reason}: {name!r}")
        self.name = name
        self.reason = reason
        self.status = status


class StorageLimit(QueueManagerError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the {limit} bytes allowed")
        self.limit = limit


class FileMissing(QueueManagerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no such file: {name}")
        self.name = name


class GalleryInvalid(QueueManagerError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccountNotFound(QueueManagerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no account {name}")
        self.name = name


class AccountInvalid(QueueManagerError):
    """A bad name or password, or an account this API does not touch (an instructor's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccountExists(AccountInvalid):
    def __init__(self, name: str) -> None:
        super().__init__(f"account {name} exists already")
        self.name = name


class LoginThrottled(QueueManagerError):
    """Refused before the password is even checked (see `core.throttling`)."""

    def __init__(self, name: str, wait: float) -> None:
        self.name = name
        self.retry_after = max(1, math.ceil(wait))  # whole seconds, as Retry-After wants
        super().__init__(f"too many attempts; try again in {self.retry_after} seconds")


class EndpointInvalid(QueueManagerError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EndpointNotFound(QueueManagerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no endpoint {name}")
        self.name = name


class WorkflowInvalid(QueueManagerError):
    """A workflow file or name the instructor gave cannot be published (says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WorkflowNotFound(QueueManagerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no published workflow {name!r}")
        self.name = name


class SettingDefaultInvalid(QueueManagerError):
    """A default setting for participants the instructor must correct (says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserDataError(QueueManagerError):
    """A user-data answer that ComfyUI gives as a short plain-text body (the page reads it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserDataInvalid(UserDataError):
    """A user-data request that cannot be carried out as asked (a folder, not a file)."""


class UserDataMissing(UserDataError):
    """No such user-data file or folder ("Directory not found" on a first visit is normal)."""


class UserDataExists(UserDataError):
    """The target exists and the caller said `overwrite=false`."""


class UserDataReadOnly(UserDataError):
    """A participant tried to change a workflow the instructor published."""
