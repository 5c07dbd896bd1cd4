"""Reading a request body whole, within a limit: refused at once when its declared length is
over it, and as soon as the bytes read pass it (a body is never read past the limit)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from queue_manager.core.errors import QueueManagerError, StorageLimit


def too_large(limit: int) -> Callable[[int | None], QueueManagerError]:
    """The usual refusal: 413 with the limit."""
    return lambda _declared: StorageLimit(limit)


async def read_capped(
    request: Request,
    limit: int,
    refuse: Callable[[int | None], QueueManagerError] | None = None,
) -> bytes:
    """The whole body; `refuse(declared length or None)` is raised once it is over `limit`."""
    refusal = refuse or too_large(limit)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refusal(int(declared))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise refusal(None)
    return bytes(body)


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse at once a body announced as larger than `limit` (for a body then streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise StorageLimit(limit)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def capped_json_route(default: int, **by_endpoint: int) -> type[APIRoute]:
    """A route class whose JSON body (a route with a body model) is read within a limit before
    FastAPI parses it, which would otherwise read any size whole: `default` bytes, or the
    limit named after the endpoint function. Routes without a body model (which stream their
    bodies under limits of their own) are left as they are."""

    class CappedJsonRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handle = super().get_route_handler()
            if self.body_field is None:
                return handle
            limit = by_endpoint.get(self.name, default)

            async def capped(request: Request) -> Response:
                # FastAPI reads `request.body()`, which returns what is kept here.
                request._body = await read_capped(request, limit)
                return await handle(request)

            return capped

    return CappedJsonRoute
