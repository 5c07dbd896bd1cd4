"""Who is calling: a signed, HttpOnly session cookie (set by the login page) or HTTP Basic with
the same credentials (scripts, tests). Participants and instructors only; workers have tokens."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from queue_manager.core.accounts import Account, Role
from queue_manager.service.accounts import Accounts

SESSION_COOKIE = "cw_session"


class Sessions:
    """Signs and reads session cookies (itsdangerous: HMAC-signed, timestamped)."""

    def __init__(self, secret: str, max_age_seconds: int, secure: bool) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="cw-session")
        self.max_age = max_age_seconds
        self.secure = secure

    def issue(self, response: Response, account: Account) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.dumps({"u": account.name}),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    def name_in(self, cookie: str) -> str | None:
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # tampered, expired, or from another secret
            return None
        name = data.get("u") if isinstance(data, dict) else None
        return name if isinstance(name, str) else None


async def authenticate(request: HTTPConnection) -> Account | None:
    """The account behind a request or a WebSocket handshake, or None."""
    accounts: Accounts = request.app.state.accounts
    sessions: Sessions = request.app.state.sessions
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and (name := sessions.name_in(cookie)):
        return await accounts.get(name)  # None once the account is removed
    basic = _basic_credentials(request.headers.get("authorization", ""))
    if basic is not None:
        return await accounts.verify(*basic)
    return None


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, sep, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


async def require_account(request: Request) -> Account:
    account = await authenticate(request)
    if account is None:
        raise HTTPException(
            401, "log in first", {"WWW-Authenticate": 'Basic realm="Comfy Workshop"'}
        )
    return account


async def require_instructor(account: Annotated[Account, Depends(require_account)]) -> Account:
    if account.role is not Role.INSTRUCTOR:
        raise HTTPException(403, "for the instructor only")
    return account


CurrentAccount = Annotated[Account, Depends(require_account)]
Instructor = Annotated[Account, Depends(require_instructor)]
