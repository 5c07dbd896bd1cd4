"""The login page, logout (this session, or with `everywhere` every session of the account),
and `GET /api/me` (who the caller is)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from queue_manager.api.auth import (
    CurrentAccount,
    Sessions,
    address_of,
    authenticate,
    session_in,
)
from queue_manager.api.errors import headers_for, status_for
from queue_manager.api.participant.access import check_origin
from queue_manager.core.accounts import Account, Role
from queue_manager.core.errors import LoginThrottled
from queue_manager.service.accounts import Accounts

router = APIRouter(tags=["accounts"])

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Comfy Workshop - log in</title>
<style>body{{font-family:system-ui,sans-serif;background:#202020;color:#ddd;display:grid;
place-items:center;height:100vh;margin:0}}form{{background:#2b2b2b;padding:2em;border-radius:8px;
display:grid;gap:.8em;min-width:18em}}input,button{{font-size:1em;padding:.5em}}
.err{{color:#f88}}</style></head><body><form method="post" action="/login">
<h1>Comfy Workshop</h1>{error}<label>Name <input name="username" autocomplete="username"
autofocus required></label><label>Password <input name="password" type="password"
autocomplete="current-password" required></label><input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button></form></body></html>"""


def _page(next_url: str, error: str = "") -> str:
    err = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(error=err, next=html.escape(next_url, quote=True))


def home_of(account: Account) -> str:
    return "/admin/" if account.role is Role.INSTRUCTOR else f"/{account.name}/"


def safe_next(next_url: str, account: Account) -> str:
    """Only a path on this site (never `//host` or `https://host`: no open redirect)."""
    if next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return home_of(account)


@router.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    """The address `up` prints: a participant to their page, the instructor to the dashboard,
    anyone else (or a login that must wait) to the login page."""
    try:
        account = await authenticate(request)
    except LoginThrottled:
        account = None
    return RedirectResponse(home_of(account) if account else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(next: str = "") -> HTMLResponse:
    return HTMLResponse(_page(next))


# Logging in and out change who the browser is: a page elsewhere must not do either with a form
# it submits here (login CSRF would put the participant's work into the attacker's account).
@router.post("/login", response_model=None, dependencies=[Depends(check_origin)])
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    accounts: Accounts = request.app.state.accounts
    try:
        session = await accounts.log_in(username.strip().lower(), password, address_of(request))
    except LoginThrottled as exc:
        error = f"Too many attempts. Try again in {exc.retry_after} seconds."
        return HTMLResponse(_page(next, error), status_for(exc), headers_for(exc))
    if session is None:
        return HTMLResponse(_page(next, "Wrong name or password."), status_code=401)
    response = RedirectResponse(safe_next(next, session.account), status_code=303)
    sessions: Sessions = request.app.state.sessions
    sessions.issue(response, session)
    return response


@router.post("/logout", dependencies=[Depends(check_origin)])
async def logout(request: Request, everywhere: Annotated[bool, Form()] = False) -> RedirectResponse:
    """End this session; with `everywhere`, every session of the account (other browsers)."""
    accounts: Accounts = request.app.state.accounts
    if (session := session_in(request)) is not None:
        name, session_id = session
        if everywhere and await accounts.by_session(name, session_id) is not None:
            await accounts.sign_out(name, by=name)
        else:
            await accounts.log_out(name, session_id)
    response = RedirectResponse("/login", status_code=303)
    sessions: Sessions = request.app.state.sessions
    sessions.clear(response)
    return response


@router.get("/api/me")
async def me(account: CurrentAccount) -> dict[str, str]:
    return {"name": account.name, "role": account.role.value}
