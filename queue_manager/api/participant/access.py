"""Who may use `/{user}/...`: the account named in the path, and nobody else.

Another user's page, API or socket answers exactly like a path that does not exist (404), so
probing reveals nothing. State-changing requests and sockets must come from our own origin, as
ComfyUI checks (a cross-site page must not drive a participant's queue with their cookie).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from queue_manager.api.auth import authenticate
from queue_manager.core.accounts import Account

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotFound(HTTPException):
    """What a stranger gets for someone else's page, job, file or socket."""

    def __init__(self) -> None:
        super().__init__(404)


async def current_user(connection: HTTPConnection, user: str) -> Account:
    """The caller, if they are the owner of `/{user}/`; 401 for nobody, 404 for others."""
    account = await authenticate(connection)
    if account is None:
        raise HTTPException(
            401, "log in first", {"WWW-Authenticate": 'Basic realm="Comfy Workshop"'}
        )
    if account.name != user:
        raise NotFound()
    return account


def same_origin(connection: HTTPConnection) -> bool:
    """ComfyUI's rule: an `Origin` naming another host than `Host` is refused. No `Origin`
    (curl, scripts with HTTP Basic) passes, unless the browser says the request comes from
    another site (`Sec-Fetch-Site: cross-site`): a page elsewhere must not act with our cookie
    even where its browser leaves `Origin` out."""
    if connection.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = connection.headers.get("origin")
    if not origin:
        return True
    host = connection.headers.get("host", "")
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host.lower()


async def check_origin(connection: HTTPConnection) -> None:
    """For HTTP requests (the socket checks its handshake itself)."""
    method = connection.scope.get("method")
    is_http = connection.scope["type"] == "http"
    if is_http and method not in _SAFE_METHODS and not same_origin(connection):
        raise HTTPException(403)


Owner = Annotated[Account, Depends(current_user)]
