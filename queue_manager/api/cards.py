"""`GET /login/card/{token}`: the login link a card's QR code carries. Used once, it opens a
session as the login form does and sends its account to their page (the dashboard for an
instructor); anything else is a plain page saying what to do, with no session.

Only GET consumes a link (HEAD is not accepted, so a checker that only asks for headers leaves
it alone). Answers are never cached and send no Referer onwards: the token is in the URL."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from queue_manager.api.auth import Sessions, address_of
from queue_manager.api.errors import headers_for, status_for
from queue_manager.core.cards import home_of
from queue_manager.core.errors import LoginThrottled
from queue_manager.service.cards import LoginCards

router = APIRouter(tags=["accounts"])

_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
REFUSED = (
    "This login link was already used or has expired. Log in with your name and password, "
    "or ask the instructor for a new card."
)

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Comfy Workshop - login link</title>
<style>body{{font-family:system-ui,sans-serif;background:#202020;color:#ddd;display:grid;
place-items:center;min-height:100vh;margin:0}}main{{background:#2b2b2b;padding:2em;
border-radius:8px;max-width:28em}}a{{color:#8cf}}</style></head><body><main>
<h1>Comfy Workshop</h1><p>{message}</p><p><a href="/login">Log in with your password</a></p>
</main></body></html>"""


def _page(message: str, status: int, headers: dict[str, str] | None = None) -> HTMLResponse:
    page = _PAGE.format(message=html.escape(message))
    return HTMLResponse(page, status_code=status, headers={**_PRIVATE, **(headers or {})})


@router.get("/login/card/{token}", response_class=HTMLResponse)
async def card_login(request: Request, token: str) -> Response:
    """Log in with a card's link: 303 to the account's page with a session cookie, 410 for a
    link that was used, expired, revoked or never made (a wrong password, to throttling),
    429 while this address must wait."""
    cards: LoginCards = request.app.state.cards
    try:
        login = await cards.redeem(token, address_of(request))
    except LoginThrottled as exc:
        message = f"Too many attempts. Try again in {exc.retry_after} seconds."
        return _page(message, status_for(exc), headers_for(exc))
    if login.session is None:
        return _page(REFUSED, 410)
    account = login.session.account
    response = RedirectResponse(home_of(account.name, account.role), 303, headers=_PRIVATE)
    sessions: Sessions = request.app.state.sessions
    sessions.issue(response, login.session)
    return response
