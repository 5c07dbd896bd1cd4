"""Talking to a workshop over HTTP as its pages do: the login form (a session cookie), a
participant's ComfyUI API under `/<user>/api/...`, and the instructor's admin API and
`/metrics`. Every call has a timeout; what the operator must act on is a `WorkshopError` whose
message says what to do."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
SESSION_COOKIE = "cw_session"  # queue_manager.api.auth.SESSION_COOKIE
RSS = "process_resident_memory_bytes"


class WorkshopError(Exception):
    """Said to the operator as one line; the rehearsal cannot go on."""


@dataclass(frozen=True)
class Login:
    name: str
    password: str


def new_client(base: str) -> httpx.AsyncClient:
    """A client with its own cookie jar (one per participant, as one browser each)."""
    return httpx.AsyncClient(base_url=base, timeout=TIMEOUT, follow_redirects=False)


async def check_reachable(base: str) -> None:
    """The workshop answers at `base`; WorkshopError saying what to check when not."""
    try:
        async with new_client(base) as client:
            answer = await client.get("/healthz")
    except httpx.HTTPError as exc:
        raise WorkshopError(
            f"cannot reach the workshop at {base} ({type(exc).__name__}): is it running "
            "(comfy-workshop up), and is the address right?"
        ) from exc
    if answer.status_code != 200:
        raise WorkshopError(
            f"{base}/healthz answered {answer.status_code}: is this a Comfy Workshop address?"
        )


async def log_in(client: httpx.AsyncClient, login: Login) -> None:
    """The login form, as a person sends it; the session cookie stays in `client`."""
    answer = await client.post(
        "/login", data={"username": login.name, "password": login.password, "next": "/"}
    )
    if answer.status_code == 303 and SESSION_COOKIE in client.cookies:
        return
    if answer.status_code == 401:
        raise WorkshopError(f"wrong name or password for {login.name}: check the credentials")
    if answer.status_code == 429:
        wait = answer.headers.get("retry-after", "a few")
        raise WorkshopError(f"logins of {login.name} are throttled: wait {wait} seconds")
    raise WorkshopError(f"logging in {login.name} answered {answer.status_code}")


def session_cookie(client: httpx.AsyncClient) -> str:
    return f"{SESSION_COOKIE}={client.cookies.get(SESSION_COOKIE, '')}"


def error_message(answer: httpx.Response) -> str:
    """The workshop's (ComfyUI's) error words in an answer, else its status."""
    try:
        body = answer.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"HTTP {answer.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("type") or "")
        nodes = body.get("node_errors") or {}
        if isinstance(nodes, dict) and nodes:
            message += f" (node errors in {', '.join(sorted(map(str, nodes)))})"
        return message or f"HTTP {answer.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else f"HTTP {answer.status_code}"


class Instructor:
    """The instructor's admin API, logged in."""

    def __init__(self, client: httpx.AsyncClient, name: str) -> None:
        self.client = client
        self.name = name

    async def check_role(self) -> None:
        answer = await self.client.get("/api/me")
        if answer.status_code != 200 or answer.json().get("role") != "instructor":
            raise WorkshopError(
                f"{self.name} is not an instructor: give an instructor's login "
                "(--instructor NAME --password ...) or participants' credentials"
            )

    async def make_account(self, name: str) -> Login:
        answer = await self.client.post("/admin/api/accounts", json={"name": name})
        if answer.status_code == 404:
            raise WorkshopError(
                "this workshop has no account API (/admin/api/accounts): update it, or give "
                "participants' credentials with --credentials FILE"
            )
        if answer.status_code != 201:
            raise WorkshopError(f"could not make account {name}: {error_message(answer)}")
        return Login(name, str(answer.json()["password"]))

    async def remove_account(self, name: str) -> None:
        answer = await self.client.delete(
            f"/admin/api/accounts/{quote(name)}", params={"files": "true"}
        )
        if answer.status_code not in (200, 404):
            raise WorkshopError(f"could not remove account {name}: {error_message(answer)}")

    async def job(self, job_id: str) -> dict[str, Any] | None:
        answer = await self.client.get(f"/admin/api/jobs/{quote(job_id)}")
        found: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
        return found

    async def workers(self) -> list[str]:
        answer = await self.client.get("/admin/api/state")
        answer.raise_for_status()
        return [str(w["id"]) for w in answer.json().get("workers", [])]

    async def resident_memory(self) -> float | None:
        answer = await self.client.get("/metrics")
        if answer.status_code != 200:
            return None
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                if sample.name == RSS:
                    return float(sample.value)
        return None

    async def first_workflow(self) -> tuple[str, bytes] | None:
        """The published workflow that opens on a first visit (else the first listed)."""
        answer = await self.client.get("/admin/api/workflows")
        listed = answer.json() if answer.status_code == 200 else []
        if not listed:
            return None
        chosen = next((w for w in listed if w.get("first")), listed[0])
        name = str(chosen["name"])
        graph = await self.client.get(f"/admin/api/workflows/{quote(name)}")
        graph.raise_for_status()
        return name, graph.content
