"""The queue manager app in process with three accounts, clients acting as each (HTTP Basic),
the same app behind a real uvicorn (`base`, for WebSockets), and a GPU on the worker API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import WorkerId
from queue_manager.store.accounts import AccountStore
from tests.support.gpu import Gpu
from tests.support.participants import ACCOUNTS, PASSWORD, client_for
from tests.support.servers import serve
from tests.support.settings import make_settings


@pytest.fixture
async def app(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(redis_server, prefix, data_dir=tmp_path / "data"))
    async with application.router.lifespan_context(application):
        accounts: AccountStore = application.state.accounts
        for name, role in ACCOUNTS.items():
            await accounts.add(name, role, PASSWORD)
        yield application


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


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:
    """The app's URL on a real uvicorn (WebSockets, streaming)."""
    async with serve(app) as url:
        yield url


@pytest.fixture
async def gpu(app: FastAPI) -> AsyncIterator[Gpu]:
    """A worker with a token, not registered yet."""
    token = await app.state.tokens.create(WorkerId("gpu1"))
    worker = Gpu(app, {"Authorization": f"Bearer {token}"})
    yield worker
    await worker.client.aclose()


@pytest.fixture
async def online_gpu(gpu: Gpu) -> Gpu:
    """A worker registered with the bundled nodes, ready to claim."""
    await gpu.register()
    return gpu
