"""Session-wide fixtures: one private redis-server per test session, a fresh key prefix per
test, cheap password hashing everywhere, and Ctrl-C that reaches the processes tests start."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from queue_manager.cli.redis_server import RedisServer
from queue_manager.store import accounts

_prefixes = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    """A run started in the background of a shell without job control (`pytest &`, nohup)
    has SIGINT ignored, and every process it starts inherits that: the tests that press Ctrl-C
    on `up` or an operator command would then see it ignored. Handled again here, so the
    children start with the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost makes every HTTP Basic request take tens of ms; tests
    hash with the cheapest parameters (same code path, same format)."""
    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    accounts._hasher = real


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    """Every test's keys start with a prefix of its own: a clean database it owns."""
    return f"t{next(_prefixes)}:"
