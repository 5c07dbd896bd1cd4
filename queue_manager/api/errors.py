"""Domain errors become HTTP responses here and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from queue_manager.errors import (
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LimitExceeded,
    PromptRejected,
    QueueManagerError,
    StorageLimit,
    UnsafePath,
    WorkerNotFound,
    WorkerUnavailable,
)

STATUS: dict[type[QueueManagerError], int] = {
    JobNotFound: 404,
    WorkerNotFound: 404,
    InvalidTransition: 409,
    LeaseLost: 409,
    LimitExceeded: 429,
    PromptRejected: 400,
    WorkerUnavailable: 409,
    StorageLimit: 413,
}


def status_for(exc: QueueManagerError) -> int:
    if isinstance(exc, UnsafePath):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueManagerError)
    return JSONResponse(
        {"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=status_for(exc)
    )


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "StoreUnavailable", "message": "the queue store is not reachable"}},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(QueueManagerError, _domain_error)
    app.add_exception_handler(RedisError, _redis_down)
