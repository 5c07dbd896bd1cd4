"""The worker agent's HTTP client for the queue manager's worker API (`contract.worker_api`)."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError

from queue_manager.contract.worker_api import (
    PREFIX,
    Assignment,
    Attempt,
    ErrorAnswer,
    ErrorCode,
    Failure,
    GivenBack,
    Heartbeat,
    OutputUpload,
    Registration,
    Report,
    ReportBatch,
    ReportItem,
    ReportType,
    SignalItem,
    Signals,
    StoredOutput,
)
from queue_manager.core.jobs import JobError
from worker.errors import JobLost, ManagerUnavailable, WorkerUnknown
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

__all__ = ["Assignment", "ManagerClient", "SignalItem"]

# Answers after which the same request may work a little later.
_TRY_AGAIN = frozenset({401, 403, 429})
_JSON = {"Content-Type": "application/json"}


class ManagerClient:
    def __init__(self, settings: WorkerSettings, token: str | None = None) -> None:
        """`token`: a pushed job's lease token (serve mode), in place of our worker token."""
        timeout = httpx.Timeout(settings.request_timeout_seconds, connect=10.0)
        bearer = token or settings.token.get_secret_value()
        self._http = httpx.AsyncClient(
            base_url=str(settings.manager_url).rstrip("/") + PREFIX,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=timeout,
        )
        self._claim_wait = settings.claim_wait_seconds
        self._batches = True  # False once the queue manager said it has no batch route

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            r = await self._http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise ManagerUnavailable(f"queue manager unreachable: {exc!r}") from exc
        code = _error_code(r)
        if code in (ErrorCode.LEASE_LOST, ErrorCode.JOB_NOT_FOUND) or r.status_code == 409:
            raise JobLost(r.text)
        if code is ErrorCode.WORKER_UNKNOWN:
            raise WorkerUnknown(r.text)
        if r.status_code >= 500 or r.status_code in _TRY_AGAIN:
            raise ManagerUnavailable(f"queue manager answered {r.status_code}: {r.text[:200]}")
        r.raise_for_status()
        return r

    async def _post(self, url: str, body: Any) -> httpx.Response:
        return await self._request("POST", url, content=body.model_dump_json(), headers=_JSON)

    async def register(
        self, node_types: list[str], models: list[str], info: dict[str, Any]
    ) -> None:
        await self._post("/register", Registration(node_types=node_types, models=models, info=info))

    async def publish_object_info(self, object_info: dict[str, Any]) -> None:
        """This ComfyUI's node catalogue, for the participants' pages and prompt validation
        (gzip: a few MB of JSON shrink about tenfold, which matters across a tailnet)."""
        raw = gzip.compress(json.dumps(object_info, separators=(",", ":")).encode(), 6)
        await self._request(
            "PUT",
            "/object_info",
            content=raw,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async def claim(self) -> Assignment | None:
        r = await self._request("POST", "/claim", params={"wait": self._claim_wait})
        if r.status_code == 204:
            return None
        return Assignment.model_validate_json(r.content)

    async def stop_waiting(self) -> None:
        """End our pending long poll now: it answers with what it already holds."""
        await self._request("POST", "/claim/stop")

    async def leave(self) -> None:
        """This agent stops: the queue forgets it now and requeues anything still given to it."""
        await self._request("POST", "/leave")

    async def signals(self) -> list[SignalItem]:
        """Long poll: what to do at once about the jobs we hold (a cancel, a take-back)."""
        r = await self._request("POST", "/signals", params={"wait": self._claim_wait})
        return Signals.model_validate_json(r.content).signals

    async def give_back(self, job: Assignment) -> bool:
        """Return a job handed early that never started (deleted from our ComfyUI's queue):
        False when it started first, and is still ours to run."""
        r = await self._post(f"/jobs/{job.id}/give-back", Attempt(attempt=job.attempt))
        return GivenBack.model_validate_json(r.content).returned

    async def heartbeat(self, job: Assignment | None) -> None:
        body = Heartbeat(job_id=job.id, attempt=job.attempt) if job else Heartbeat()
        await self._post("/heartbeat", body)

    async def report(self, job: Assignment, kind: ReportType, data: dict[str, Any]) -> None:
        await self._post(
            f"/jobs/{job.id}/events", Report(attempt=job.attempt, type=kind, data=data)
        )

    async def report_many(
        self, job: Assignment, reports: list[tuple[ReportType, dict[str, Any]]]
    ) -> None:
        """Several reports in one request, in order (at most MAX_BATCH_REPORTS). A report the
        queue could not keep (a NaN in a node's UI output) is left out, alone; a queue manager
        older than this agent (no batch route) gets them one by one from then on."""
        items = []
        for kind, data in reports:
            try:
                items.append(ReportItem(type=kind, data=data))
            except ValidationError as exc:
                log.warning("job=%s: a %s report cannot be sent: %s", job.id, kind, exc)
        if len(items) > 1 and self._batches:
            try:
                await self._post(
                    f"/jobs/{job.id}/events/batch", ReportBatch(attempt=job.attempt, reports=items)
                )
                return
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code not in (404, 405):
                    raise
                log.info("the queue manager takes no report batches: one request each")
                self._batches = False
        for item in items:
            await self.report(job, item.type, item.data)

    async def upload_output(
        self, job: Assignment, upload: OutputUpload, body: AsyncIterator[bytes]
    ) -> StoredOutput:
        r = await self._request(
            "PUT",
            f"/jobs/{job.id}/outputs",
            params=upload.model_dump(),
            content=body,
            timeout=httpx.Timeout(None, connect=10.0),  # a multi-GB video takes what it takes
        )
        return StoredOutput.model_validate_json(r.content)

    def download_input(self, job: Assignment, kind: str, name: str) -> Any:
        """A streaming response context for one of the job's user's files."""
        return self._http.stream(
            "GET", f"/jobs/{job.id}/files/{kind}", params={"attempt": job.attempt, "name": name}
        )

    async def complete(self, job: Assignment) -> None:
        """The run ended well; the queue manager already holds every output it stored."""
        await self._post(f"/jobs/{job.id}/complete", Attempt(attempt=job.attempt))

    async def preview(self, job: Assignment, image: bytes, mime: str) -> None:
        await self._request(
            "PUT",
            f"/jobs/{job.id}/preview",
            params={"attempt": job.attempt, "mime": mime},
            content=image,
        )

    async def release(self, job: Assignment) -> None:
        """Give the job back to the queue (this GPU cannot finish it)."""
        await self._post(f"/jobs/{job.id}/release", Attempt(attempt=job.attempt))

    async def fail(self, job: Assignment, error: dict[str, Any]) -> None:
        failure = Failure(attempt=job.attempt, error=JobError.model_validate(error))
        await self._post(f"/jobs/{job.id}/fail", failure)


def _error_code(response: httpx.Response) -> ErrorCode | None:
    if response.status_code < 400:
        return None
    try:
        return ErrorAnswer.model_validate_json(response.content).error.code
    except ValidationError:
        return None
