"""Who is calling: a signed, HttpOnly session cookie (set by the login page) or HTTP Basic with
the same credentials (scripts, tests). Participants and instructors only; workers have tokens.

The cookie names the account and a session id; the signature proves we issued it, the
account's record in Redis says whether that session still lives (logout, "sign out
everywhere", a password reset or a role change end it), read with the account itself. The
client's address, which login throttling counts by, comes from the connection, or from a
trusted proxy's headers (`CW_TRUSTED_PROXIES`)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from queue_manager.core.accounts import Account, Role, Session
from queue_manager.core.errors import LoginThrottled
from queue_manager.core.ids import SessionId
from queue_manager.core.throttling import Network, client_address
from queue_manager.service.accounts import Accounts

SESSION_COOKIE = "cw_session"


class Sessions:
    """Signs and reads session cookies (itsdangerous: HMAC-signed, timestamped)."""

    def __init__(self, secret: str, max_age_seconds: int, secure: bool) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="cw-session")
        self.max_age = max_age_seconds
        self.secure = secure

    def issue(self, response: Response, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.dumps({"u": session.account.name, "s": session.id}),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    def read(self, cookie: str) -> tuple[str, SessionId] | None:
        """The account name and session id a cookie we signed names (not yet whether that
        session still lives: `Accounts.by_session`)."""
        try:
            data = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # tampered, expired, or from another secret
            return None
        if not isinstance(data, dict):
            return None
        name, session = data.get("u"), data.get("s")
        if isinstance(name, str) and isinstance(session, str):
            return name, SessionId(session)
        return None  # a cookie from before sessions could end: log in again


def session_in(request: HTTPConnection) -> tuple[str, SessionId] | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    sessions: Sessions = request.app.state.sessions
    return sessions.read(cookie) if cookie else None


def address_of(request: HTTPConnection) -> str:
    """The client's address: the peer's, or the one a trusted proxy passes on."""
    trusted: tuple[Network, ...] = request.app.state.trusted_proxies
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))  # every line: proxies append
    return client_address(peer, forwarded, request.headers.get("x-real-ip"), trusted)


async def authenticate(request: HTTPConnection) -> Account | None:
    """The account behind a request or a WebSocket handshake, or None; raises LoginThrottled
    when HTTP Basic must wait (the HTTP answer is 429)."""
    accounts: Accounts = request.app.state.accounts
    session = session_in(request)
    if session is not None and (account := await accounts.by_session(*session)):
        return account
    basic = _basic_credentials(request.headers.get("authorization", ""))
    if basic is not None:
        return await accounts.verify(*basic, address_of(request))
    return None


async def authenticate_socket(websocket: HTTPConnection) -> Account | None:
    """`authenticate` for a socket, which has no 429: a throttled login is simply refused."""
    try:
        return await authenticate(websocket)
    except LoginThrottled:
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
