"""The one way the product opens Redis: decoded strings, timeouts, and retries across restarts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from urllib.parse import urlsplit

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError

# Longer than any blocking read we issue (the event hub blocks 5 s), shorter than a hang.
SOCKET_TIMEOUT = 15.0
MAX_CONNECTIONS = 200
# What a request meets while Redis is away (after the client's own retries): the HTTP layer
# answers these with 503 and Retry-After.
OUTAGES: tuple[type[Exception], ...] = (RedisError,)
POOL_WAIT = 10.0


def connect(url: str, *, retries: int = 6) -> Redis:
    """A client that reconnects on its own when Redis restarts.

    Retrying a script after a lost reply may run it twice; every script is written so that a
    second run is harmless (submit is idempotent by job id; a second claim hands out a different
    job, and the first one's lease simply expires back into the queue).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        connection_class=_CANCELLABLE.get(urlsplit(url).scheme, CancellableConnection),
        # A burst (every page reconnecting after a restart) waits for a connection instead of
        # failing at once: redis-py's default pool refused the 101st concurrent command.
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis.from_pool(pool)


class _CancellableSends(AbstractConnection):
    """Sends timed by `asyncio.timeout`, never by `asyncio.wait_for`.

    redis-py times each send with `asyncio.wait_for(send, socket_timeout)`. On Python 3.11 that
    loses a cancellation which lands as the send completes (CPython gh-86296; 3.12 rebuilt
    wait_for on `asyncio.timeout`): the command returns normally and the task, asked to stop,
    runs on. A send takes a moment, so a loop of Redis calls (a socket's status loop, account
    creation at start-up) lost about every Ctrl-C: `up` kept starting, a page's socket outlived
    the server's shutdown until uvicorn cancelled it and logged the cancellation as an error.
    """

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        limit = self.socket_timeout
        if not limit or sys.version_info >= (3, 12):
            await super().send_packed_command(command, check_health)
            return
        try:
            async with asyncio.timeout(limit):
                # No timeout of its own inside (each connection serves one command at a
                # time): ours bounds the whole send, a health check's PING included.
                self.socket_timeout = None
                try:
                    await super().send_packed_command(command, check_health)
                finally:
                    self.socket_timeout = limit
        except TimeoutError:
            # As redis-py says it (the connection was dropped on the way out): retried.
            raise exceptions.TimeoutError("Timeout writing to socket") from None


class CancellableConnection(_CancellableSends, Connection):
    pass


class _CancellableSSLConnection(_CancellableSends, SSLConnection):
    pass


class _CancellableUnixConnection(_CancellableSends, UnixDomainSocketConnection):
    pass


_CANCELLABLE: dict[str, type[AbstractConnection]] = {
    "rediss": _CancellableSSLConnection,
    "unix": _CancellableUnixConnection,
}
