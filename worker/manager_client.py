"""The worker agent's HTTP client for the queue manager's worker API (/worker/v1)."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from worker.errors import JobLost, ManagerUnavailable, WorkerUnknown
from worker.settings import WorkerSettings


@dataclass(frozen=True)
class Assignment:
    """A claimed job: the prompt stays the participant's JSON, passed on to ComfyUI."""

    id: str
    attempt: int
    user: str
    client_id: str | None
    prompt: dict[str, Any]
    extra_data: dict[str, Any]


class ManagerClient:
    def __init__(self, settings: WorkerSettings) -> None:
        timeout = httpx.Timeout(settings.request_timeout_seconds, connect=10.0)
        self._http = httpx.AsyncClient(
            base_url=str(settings.manager_url).rstrip("/") + "/worker/v1",
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=timeout,
        )
        self._claim_wait = settings.claim_wait_seconds

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            r = await self._http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise ManagerUnavailable(f"queue manager unreachable: {exc!r}") from exc
        if r.status_code == 409:
            raise JobLost(r.text)
        if r.status_code == 404:
            kind = _error_type(r)
            if kind == "WorkerNotFound":
                raise WorkerUnknown(r.text)
            if kind == "JobNotFound":
                raise JobLost(r.text)
        if r.status_code >= 500 or r.status_code in (401, 403, 429):
            raise ManagerUnavailable(f"queue manager answered {r.status_code}: {r.text[:200]}")
        r.raise_for_status()
        return r

    async def register(
        self, node_types: list[str], models: list[str], info: dict[str, Any]
    ) -> None:
        await self._request(
            "POST", "/register", json={"node_types": node_types, "models": models, "info": info}
        )

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
        j = r.json()
        return Assignment(
            j["id"],
            int(j["attempt"]),
            j["user"],
            j.get("client_id"),
            j["prompt"],
            j.get("extra_data") or {},
        )

    async def heartbeat(self, job: Assignment | None) -> None:
        body = {"job_id": job.id, "attempt": job.attempt} if job else {}
        await self._request("POST", "/heartbeat", json=body)

    async def report(self, job: Assignment, kind: str, data: dict[str, Any]) -> None:
        await self._request(
            "POST",
            f"/jobs/{job.id}/events",
            json={"attempt": job.attempt, "type": kind, "data": data},
        )

    async def upload_output(
        self,
        job: Assignment,
        subfolder: str,
        filename: str,
        body: AsyncIterator[bytes],
        *,
        kind: str = "output",
    ) -> dict[str, Any]:
        r = await self._request(
            "PUT",
            f"/jobs/{job.id}/outputs",
            params={
                "attempt": job.attempt,
                "filename": filename,
                "subfolder": subfolder,
                "type": "temp" if kind == "temp" else "output",
            },
            content=body,
            timeout=httpx.Timeout(None, connect=10.0),  # a multi-GB video takes what it takes
        )
        stored: dict[str, Any] = r.json()
        return stored

    def download_input(self, job: Assignment, kind: str, name: str) -> Any:
        """A streaming response context for one of the job's user's files."""
        return self._http.stream(
            "GET", f"/jobs/{job.id}/files/{kind}", params={"attempt": job.attempt, "name": name}
        )

    async def complete(self, job: Assignment, outputs: list[dict[str, Any]]) -> None:
        await self._request(
            "POST", f"/jobs/{job.id}/complete", json={"attempt": job.attempt, "outputs": outputs}
        )

    async def preview(self, job: Assignment, image: bytes, mime: str) -> None:
        await self._request(
            "PUT",
            f"/jobs/{job.id}/preview",
            params={"attempt": job.attempt, "mime": mime},
            content=image,
        )

    async def release(self, job: Assignment) -> None:
        """Give the job back to the queue (this GPU cannot finish it)."""
        await self._request("POST", f"/jobs/{job.id}/release", json={"attempt": job.attempt})

    async def fail(self, job: Assignment, error: dict[str, Any]) -> None:
        await self._request(
            "POST", f"/jobs/{job.id}/fail", json={"attempt": job.attempt, "error": error}
        )


def _error_type(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None
