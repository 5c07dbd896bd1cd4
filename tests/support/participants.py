"""A queue manager app with three accounts, and clients acting as each (HTTP Basic).

Import the fixtures into a test module: `from tests.support.participants import app, alice, bob,
teacher  # noqa: F401`. `alice` is user001, `bob` user002, `teacher` the instructor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.store.accounts import AccountStore, Role
from tests.conftest import make_settings

PASSWORD = "workshop-password"
ACCOUNTS = {"user001": Role.PARTICIPANT, "user002": Role.PARTICIPANT, "teacher": Role.INSTRUCTOR}


@pytest.fixture
async def app(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(redis_server, prefix, data_dir=tmp_path / "data"))
    async with application.router.lifespan_context(application):
        accounts: AccountStore = application.state.accounts
        for name, role in ACCOUNTS.items():
            await accounts.add(name, role, PASSWORD)
        yield application


def client_for(app: FastAPI, name: str | None) -> httpx.AsyncClient:
    """A client logged in as `name` (None: nobody), talking to `app` in process."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=(name, PASSWORD) if name else None,
    )


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "user001") as c:
        yield c


@pytest.fixture
async def bob(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "user002") as c:
        yield c


@pytest.fixture
async def teacher(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "teacher") as c:
        yield c


@pytest.fixture
async def nobody(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, None) as c:
        yield c
