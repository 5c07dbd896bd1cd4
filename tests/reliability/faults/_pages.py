"""Participants as their browsers behave over HTTP: log in with the login form (a session
cookie, from the accounts in DATA/credentials.csv) and press Run, which is `POST
/<user>/api/prompt` with the page's clientId. Their pages' sockets are the suite's
`ParticipantPage` (tests/reliability/support/sockets.py)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from queue_manager.api.auth import SESSION_COOKIE
from queue_manager.core.ids import JobId, UserId
from tests.reliability.support.invariants import Accepted, ParticipantPage
from tests.support.graphs import sampler

HTTP_TIMEOUT = 30.0  # longer than any outage a test makes: a hang shows as a timeout
_runs = itertools.count(1)


def graph(user: str, steps: int = 8) -> dict[str, Any]:
    """The default text-to-image graph with a seed of its own (ComfyUI would otherwise run
    only the changed nodes), its image saved under a prefix of its own (the checks tell
    whose file is whose by it)."""
    made = copy.deepcopy(sampler(steps))
    run = next(_runs)
    made["3"]["inputs"]["seed"] = run
    made["9"]["inputs"]["filename_prefix"] = f"{user}-run{run}"
    return made


@dataclass
class Answer:
    """What `POST /prompt` answered."""

    status: int
    body: dict[str, Any]

    @property
    def job(self) -> str | None:
        job = self.body.get("prompt_id")
        return job if self.status == 200 and isinstance(job, str) else None


class Participant:
    def __init__(self, name: str, password: str, url: str) -> None:
        self.name = name
        self.password = password
        self.http = httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT)
        self.sent: list[tuple[Answer, str | None]] = []  # each answer, with the page's clientId

    async def log_in(self) -> None:
        form = {"username": self.name, "password": self.password}
        sent = await self.http.post("/login", data=form)
        assert sent.status_code == 303, sent.text
        assert self.http.cookies.get(SESSION_COOKIE), "no session cookie after logging in"

    def on(self, url: str) -> Participant:
        """The same person, same login and same record, talking to another queue manager."""
        other = Participant(self.name, self.password, url)
        other.http.cookies = self.http.cookies
        other.sent = self.sent
        return other

    async def submit(self, client_id: str | None = None, steps: int = 8) -> Answer:
        """Run: the page's graph and its clientId, as the ComfyUI page posts them."""
        body: dict[str, Any] = {"prompt": graph(self.name, steps)}
        if client_id is not None:
            body["client_id"] = client_id
        sent = await self.http.post(f"/{self.name}/api/prompt", json=body)
        try:
            parsed = sent.json()
        except json.JSONDecodeError:
            parsed = {"raw": sent.text}
        answer = Answer(sent.status_code, parsed if isinstance(parsed, dict) else {})
        self.sent.append((answer, client_id))
        return answer

    def accepted(self) -> list[Accepted]:
        return [
            Accepted(JobId(a.job), UserId(self.name), client_id=client)
            for a, client in self.sent
            if a.job is not None
        ]

    async def aclose(self) -> None:
        await self.http.aclose()


def accepted(people: Sequence[Participant]) -> list[Accepted]:
    return [a for person in people for a in person.accepted()]


@contextlib.asynccontextmanager
async def logged_in(
    passwords: dict[str, str], names: Sequence[str], url: str
) -> AsyncIterator[list[Participant]]:
    people = [Participant(n, passwords[n], url) for n in names]
    try:
        await asyncio.gather(*(p.log_in() for p in people))
        yield people
    finally:
        await asyncio.gather(*(p.aclose() for p in people))


@contextlib.asynccontextmanager
async def open_pages(
    passwords: dict[str, str], names: Sequence[str], url: str
) -> AsyncIterator[list[ParticipantPage]]:
    """Each participant's page open on the queue manager at `url`, its socket up."""
    async with contextlib.AsyncExitStack() as stack:
        pages = [ParticipantPage(url, UserId(n), passwords[n]) for n in names]
        yield [await stack.enter_async_context(page) for page in pages]
