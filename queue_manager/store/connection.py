"""The one way the product opens Redis: decoded strings, timeouts, and retries across restarts."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
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
