"""The accounts of the in-process app (`tests/integration/api/conftest.py`), and clients
acting as each: `alice` is user001, `bob` user002, `teacher` the instructor."""

from __future__ import annotations

import base64

import httpx
from fastapi import FastAPI

from queue_manager.store.accounts import Role

PASSWORD = "workshop-password"
ACCOUNTS = {"user001": Role.PARTICIPANT, "user002": Role.PARTICIPANT, "teacher": Role.INSTRUCTOR}


def client_for(app: FastAPI, name: str | None) -> httpx.AsyncClient:
    """A client logged in as `name` (None: nobody), talking to `app` in process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=(name, PASSWORD) if name else None,
    )


def basic(name: str) -> dict[str, str]:
    """The HTTP Basic header of an account (for WebSocket handshakes)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()}
