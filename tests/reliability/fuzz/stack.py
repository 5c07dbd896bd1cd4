"""A running queue manager for the fuzzers: the real app behind a real uvicorn on a free port,
in a thread with its own event loop (the fuzzers are synchronous: Hypothesis and schemathesis
call, block on the answer, call again), with the session's private redis-server (a key prefix
of its own) and a data folder of its own.

Everyone acts as they do on the day: participants and the instructor with the session cookie
the login page sets, the GPU with a worker token made by the token store."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.api.auth import SESSION_COOKIE
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import WorkerId
from queue_manager.store.accounts import Role
from tests.support.participants import PASSWORD
from tests.support.servers import serve
from tests.support.settings import make_settings

T = TypeVar("T")
TIMEOUT = httpx.Timeout(30.0)  # every call of a fuzzer: a hang fails, it never blocks the run
WORKER = WorkerId("gpu1")
_stacks = itertools.count()


@dataclass
class Stack:
    url: str
    data_dir: Path
    worker_token: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    _cookies: dict[str, str] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the server's loop (the app's state lives there) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def cookie(self, name: str) -> str:
        """`name`'s session cookie, logging in through the login page the first time (or
        again after `forget_sessions`: a fuzzed sign-out may have ended it)."""
        if name not in self._cookies:
            self._cookies[name] = self.login(name)
        return self._cookies[name]

    def login(self, name: str) -> str:
        """A new session of `name`, as the login page opens it."""
        with httpx.Client(base_url=self.url, timeout=TIMEOUT) as client:
            r = client.post("/login", data={"username": name, "password": PASSWORD})
            assert r.status_code == 303, r.text
            return r.cookies[SESSION_COOKIE]

    def forget_sessions(self) -> None:
        self._cookies.clear()

    def client(self, name: str) -> httpx.Client:
        """A client logged in as `name` by its session cookie."""
        return httpx.Client(
            base_url=self.url, timeout=TIMEOUT, cookies={SESSION_COOKIE: self.cookie(name)}
        )

    def worker(self) -> httpx.Client:
        """The GPU's client: its real worker token."""
        headers = {"Authorization": f"Bearer {self.worker_token}"}
        return httpx.Client(base_url=self.url, timeout=TIMEOUT, headers=headers)


@contextlib.contextmanager
def running_stack(
    redis_server: RedisServer, tmp: Path, accounts: Mapping[str, Role], **overrides: object
) -> Iterator[Stack]:
    """A stack for one test module; stopped (uvicorn, the app's lifespan, the thread) on exit."""
    settings = make_settings(
        redis_server, f"fuzz{next(_stacks)}:", data_dir=tmp / "data", **_FUZZ | overrides
    )
    loop = asyncio.new_event_loop()
    started: Future[tuple[str, FastAPI, str, asyncio.Event]] = Future()

    async def main() -> None:
        try:
            app = create_app(settings)
            async with serve(app) as url:
                for name, role in accounts.items():
                    await app.state.accounts.add(name, role, PASSWORD)
                token = await app.state.tokens.create(WORKER)
                stopping = asyncio.Event()
                started.set_result((url, app, token, stopping))
                await stopping.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        url, app, token, stopping = started.result(timeout=30)
        try:
            yield Stack(url, settings.data_dir, token, app, loop)
        finally:
            loop.call_soon_threadsafe(stopping.set)
    finally:
        thread.join(timeout=30)
        assert not thread.is_alive(), "the fuzzed server did not stop"
        loop.close()


# Fuzzers send thousands of requests, many with wrong passwords, from one address: login
# throttling (tested on its own in tests/integration/api/test_login_throttling.py) would make
# the fuzzers' own logins wait. No per-user queue limit either: every accepted prompt queues.
# The GPU's long poll is short: a fuzzed `wait` must not spend the run's time budget.
_FUZZ: dict[str, object] = {
    "login_free_failures": 1_000_000,
    "login_address_free_failures": 1_000_000,
    "login_account_free_failures": 1_000_000,
    "max_queued_per_user": -1,
    "claim_wait_seconds": 0.2,
}
