"""Domain errors become HTTP responses here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from queue_manager.contract.worker_api import ErrorCode
from queue_manager.core.errors import (
    AccountExists,
    AccountInvalid,
    AccountNotFound,
    EndpointInvalid,
    EndpointNotFound,
    FileMissing,
    GalleryInvalid,
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    LeaseTokenRefused,
    LimitExceeded,
    LoginThrottled,
    MalformedBody,
    PromptInvalid,
    PromptRejected,
    QueueManagerError,
    SettingDefaultInvalid,
    StorageLimit,
    UnsafePath,
    UserDataError,
    UserDataExists,
    UserDataInvalid,
    UserDataMissing,
    UserDataReadOnly,
    WorkerNotFound,
    WorkerUnavailable,
    WorkflowInvalid,
    WorkflowNotFound,
)
from queue_manager.service.queue import STORE_OUTAGES

T = TypeVar("T")

STATUS: dict[type[QueueManagerError], int] = {
    JobNotFound: 404,
    FileMissing: 404,
    EndpointInvalid: 400,
    EndpointNotFound: 404,
    MalformedBody: 400,
    WorkerNotFound: 404,
    InvalidTransition: 409,
    LeaseLost: 409,
    LimitExceeded: 429,
    PromptRejected: 400,
    WorkerUnavailable: 409,
    LeaseTokenRefused: 403,
    StorageLimit: 413,
    UserDataInvalid: 400,
    UserDataMissing: 404,
    UserDataExists: 409,
    UserDataReadOnly: 403,
    WorkflowInvalid: 400,
    WorkflowNotFound: 404,
    AccountNotFound: 404,
    AccountInvalid: 400,
    AccountExists: 409,
    GalleryInvalid: 400,
    LoginThrottled: 429,
    SettingDefaultInvalid: 400,
}


# What a worker acts on (`error.code`); see `contract.worker_api.ErrorCode`.
CODES: dict[type[QueueManagerError], ErrorCode] = {
    LeaseLost: ErrorCode.LEASE_LOST,
    JobNotFound: ErrorCode.JOB_NOT_FOUND,
    FileMissing: ErrorCode.JOB_NOT_FOUND,
    WorkerNotFound: ErrorCode.WORKER_UNKNOWN,
    WorkerUnavailable: ErrorCode.WORKER_UNAVAILABLE,
    StorageLimit: ErrorCode.TOO_LARGE,
    UnsafePath: ErrorCode.UNSAFE_NAME,
}


def _lookup(table: Mapping[type[QueueManagerError], T], exc: QueueManagerError) -> T | None:
    return next((table[cls] for cls in type(exc).__mro__ if cls in table), None)


def status_for(exc: QueueManagerError) -> int:
    if isinstance(exc, UnsafePath):
        return exc.status
    return _lookup(STATUS, exc) or 500


def headers_for(exc: QueueManagerError) -> dict[str, str]:
    """Headers that go with the status: how long a throttled login must wait."""
    if isinstance(exc, LoginThrottled):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def error_body(kind: str, message: str, code: ErrorCode | None = None) -> dict[str, object]:
    """ComfyUI's error shape (`POST /prompt`'s 400), so the participant's page shows our
    message in its own error dialog; scripts read `error.type` / `error.message`, the worker
    agent `error.code`."""
    error: dict[str, object] = {"type": kind, "message": message, "details": "", "extra_info": {}}
    if code is not None:
        error["code"] = code.value
    return {"error": error, "node_errors": {}}


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, QueueManagerError)
    if isinstance(exc, UnsafePath):
        # ComfyUI refuses such names (`/view`, uploads) with the bare status, no body.
        return Response(status_code=exc.status)
    if isinstance(exc, PromptInvalid):
        return JSONResponse(exc.body, status_code=400)  # ComfyUI's own validation answer
    body = error_body(type(exc).__name__, str(exc), _lookup(CODES, exc))
    return JSONResponse(body, status_code=status_for(exc), headers=headers_for(exc))


async def _user_data_error(_: Request, exc: Exception) -> PlainTextResponse:
    """ComfyUI answers user-data refusals in plain text ("Directory not found", "File already
    exists"); the page shows or matches those words, so they keep ComfyUI's shape."""
    assert isinstance(exc, UserDataError)
    return PlainTextResponse(exc.message, status_code=status_for(exc))


async def _store_down(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("StoreUnavailable", "the queue store is not reachable", ErrorCode.UNAVAILABLE),
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422, except for a body that is not UTF-8: sent without a JSON content
    type it is validated, and echoed, as bytes, which FastAPI's handler decodes strictly
    (UnicodeDecodeError: a 500). Echoed here with replacement characters."""
    assert isinstance(exc, RequestValidationError)
    text = {bytes: lambda raw: raw.decode("utf-8", "replace")}
    return JSONResponse({"detail": jsonable_encoder(exc.errors(), custom_encoder=text)}, 422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(QueueManagerError, _domain_error)
    app.add_exception_handler(UserDataError, _user_data_error)
    for outage in STORE_OUTAGES:
        app.add_exception_handler(outage, _store_down)
