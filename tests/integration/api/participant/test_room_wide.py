"""Room-wide pushes over real sockets: a page whose extension asked for workshop pushes gets
each announcement as `{"type", "data"}`; a page that did not ask never does; and nothing of
another user's travels with them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from queue_manager.core.events import EventType
from queue_manager.core.ids import UserId
from tests.integration.api.participant.test_socket import connect
from tests.support.graphs import simple_prompt
from tests.support.participants import PASSWORD

SHOWN = {"id": "abc123", "title": "Sunset", "author": None, "media": "image"}


async def frames_until(ws: ClientConnection, kind: str) -> tuple[list[dict[str, Any]], Any]:
    """Every JSON frame before the first of `kind`, and that frame."""
    seen: list[dict[str, Any]] = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(raw, bytes):
            continue
        frame: dict[str, Any] = json.loads(raw)
        if frame["type"] == kind:
            return seen, frame
        seen.append(frame)


async def subscribed(base: str, name: str) -> ClientConnection:
    """A page whose extension asked for workshop pushes (the first push proves it was heard)."""
    ws = await connect(base, name)
    await ws.send(json.dumps({"type": "workshop.subscribe"}))
    await frames_until(ws, "workshop.status")
    return ws


async def submit(base: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=base, auth=(name, PASSWORD), timeout=5) as client:
        r = await client.post(f"/{name}/api/prompt", json={"prompt": simple_prompt()})
        assert r.status_code == 200, r.text
        job_id: str = r.json()["prompt_id"]
        return job_id


async def test_a_subscribed_page_gets_the_push_and_an_unsubscribed_one_never_does(
    app: FastAPI, base: str
) -> None:
    alice = await subscribed(base, "user001")
    bob = await connect(base, "user002")  # the stock frontend, or before its extension asked
    try:
        await app.state.service.announce(EventType.OUTPUT_SHOWN, SHOWN, by=UserId("teacher"))
        _, frame = await frames_until(alice, "workshop.showcase")
        assert frame == {"type": "workshop.showcase", "data": SHOWN}
        # Bob's own next event comes after the push in the stream: had he been sent the push,
        # it would be among the frames before his queue's status.
        await submit(base, "user002")
        before, status = await frames_until(bob, "status")
        while status["data"]["status"]["exec_info"]["queue_remaining"] != 1:
            more, status = await frames_until(bob, "status")
            before += more
        assert not [f for f in before if f["type"].startswith("workshop.")]
    finally:
        await alice.close()
        await bob.close()


async def test_another_users_jobs_never_ride_along_with_a_push(app: FastAPI, base: str) -> None:
    alice = await subscribed(base, "user001")
    try:
        bobs_job = await submit(base, "user002")
        await app.state.service.announce(EventType.WORKFLOWS_CHANGED, {"names": ["Step 1"]})
        before, frame = await frames_until(alice, "workshop.workflows")
        assert frame["data"] == {"names": ["Step 1"]}
        text = json.dumps(before)
        assert bobs_job not in text
        assert "user002" not in text
    finally:
        await alice.close()


async def test_every_room_wide_type_reaches_every_subscribed_page(app: FastAPI, base: str) -> None:
    pages = [await subscribed(base, name) for name in ("user001", "user002", "teacher")]
    try:
        await app.state.service.announce(EventType.WORKFLOW_SENT, {"name": "Step 2"})
        for page in pages:
            _, frame = await frames_until(page, "workshop.open")
            assert frame["data"] == {"name": "Step 2"}
    finally:
        for page in pages:
            await page.close()


async def test_a_job_event_type_cannot_be_announced(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="room-wide"):
        await app.state.service.announce(EventType.JOB_COMPLETED, {"x": 1})
