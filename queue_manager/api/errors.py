"""Domain errors become HTTP responses here and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from queue_manager.core.errors import (
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LimitExceeded,
    PromptRejected,
    QueueManagerError,
    StorageLimit,
    UnsafePath,
    UserDataError,
    UserDataExists,
    UserDataInvalid,
    UserDataMissing,
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
    UserDataInvalid: 400,
    UserDataMissing: 404,
    UserDataExists: 409,
}


def status_for(exc: QueueManagerError) -> int:
    if isinstance(exc, UnsafePath):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(kind: str, message: str) -> dict[str, object]:
    """ComfyUI's error shape (`POST /prompt`'s 400), so the participant's page shows our
    message in its own error dialog; scripts read `error.type` / `error.message`."""
    return {
        "error": {"type": kind, "message": message, "details": "", "extra_info": {}},
        "node_errors": {},
    }


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, QueueManagerError)
    if isinstance(exc, UnsafePath):
        # ComfyUI refuses such names (`/view`, uploads) with the bare status, no body.
        return Response(status_code=exc.status)
    return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status_for(exc))


async def _user_data_error(_: Request, exc: Exception) -> PlainTextResponse:
    """ComfyUI answers user-data refusals in plain text ("Directory not found", "File already
    exists"); the page shows or matches those words, so they keep ComfyUI's shape."""
    assert isinstance(exc, UserDataError)
    return PlainTextResponse(exc.message, status_code=status_for(exc))


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("StoreUnavailable", "the queue store is not reachable"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(QueueManagerError, _domain_error)
    app.add_exception_handler(UserDataError, _user_data_error)
    app.add_exception_handler(RedisError, _redis_down)
