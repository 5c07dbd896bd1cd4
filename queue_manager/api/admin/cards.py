"""Login cards for the instructor: the printable page (`/admin/cards`) and its JSON API
(`/admin/api/cards...`). A card's login link and QR code appear only in the answer that made
the card; an unknown user is a 404 that changes nothing."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from queue_manager.cards.page import DEFAULT_LIFETIME, dashboard_html
from queue_manager.cards.sheet import card_html
from queue_manager.core.accounts import Role
from queue_manager.core.cards import CardState, IssuedCard, parse_lifetime, printed, public_url
from queue_manager.core.ids import UserId
from queue_manager.core.throttling import Network
from queue_manager.service.cards import LoginCards

from ..auth import Instructor
from ..deps import get_service
from .pages import _instructor_or_login

router = APIRouter(tags=["admin"])
_PRIVATE = {"Cache-Control": "no-store"}


async def get_cards(request: Request) -> LoginCards:
    cards: LoginCards = request.app.state.cards
    return cards


Cards = Annotated[LoginCards, Depends(get_cards)]


async def public_base(request: Request) -> str:
    """Where participants reach the workshop: CW_PUBLIC_URL, else the address this dashboard
    was opened at, as https behind TLS (secure cookies, or the trusted proxy in front says so)."""
    settings = (await get_service(request)).settings
    if settings.public_url:
        return public_url(settings.public_url)
    url = request.base_url
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if settings.cookie_secure or (proto == "https" and _from_proxy(request)):
        url = url.replace(scheme="https")
    return public_url(str(url))


def _from_proxy(request: Request) -> bool:
    peer = request.client.host if request.client else ""
    trusted: tuple[Network, ...] = request.app.state.trusted_proxies
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


# The address printed on the cards made by a request.
PublicBase = Annotated[str, Depends(public_base)]


class Lifetime(BaseModel):
    expires: str = Field(
        default=DEFAULT_LIFETIME,
        description="How long the new links work: 12h, 90m, 2h30m, 1d (1 minute to 30 days).",
    )

    @field_validator("expires")
    @classmethod
    def _a_lifetime(cls, value: str) -> str:
        parse_lifetime(value)  # its ValueError is the 422's message
        return value

    def seconds(self) -> float:
        return parse_lifetime(self.expires)


class MakeCards(Lifetime):
    users: list[UserId] | None = Field(
        default=None, max_length=10_000, description="Default: every participant."
    )


class CardOut(BaseModel):
    """A card just made. `link` logs `user` in once, until `expires`; `password` is null when
    it is not known (ask the instructor); `html` is the printable card."""

    user: UserId
    role: Role
    card_id: str
    url: str
    link: str
    password: str | None
    expires: float
    html: str


class Made(BaseModel):
    cards: list[CardOut]


class CardStatusOut(BaseModel):
    """A user's newest card (never its link): state, and when it was made, expires and was
    used or revoked (seconds since the epoch, 0 for none)."""

    user: UserId
    role: Role
    state: CardState
    card_id: str
    issued: float
    expires: float
    at: float


class Done(BaseModel):
    ok: bool = True


@router.get("/cards", include_in_schema=False)
async def cards_page(request: Request, cards: Cards) -> Response:
    if (redirect := await _instructor_or_login(request)) is not None:
        return redirect
    return HTMLResponse(dashboard_html(await cards.participants()), headers=_PRIVATE)


@router.get("/api/cards")
async def card_states(_: Instructor, cards: Cards) -> list[CardStatusOut]:
    """Every account's newest login card and where it stands."""
    return [CardStatusOut(**vars(s)) for s in await cards.statuses()]


@router.post("/api/cards")
async def make_cards(body: MakeCards, account: Instructor, cards: Cards, base: PublicBase) -> Made:
    """New cards (for every participant unless `users` names some); each user's older card
    stops working. Passwords come from the workshop's credentials file where still right."""
    users = body.users if body.users is not None else await cards.participants()
    made = await cards.issue(users, body.seconds(), account.name)
    return Made(cards=[_out(c, base) for c in made])


@router.post("/api/cards/{user}")
async def new_card(
    user: UserId, body: Lifetime, account: Instructor, cards: Cards, base: PublicBase
) -> CardOut:
    """A new card for `user`; their older card stops working (their sessions stay)."""
    (card,) = await cards.issue([user], body.seconds(), account.name)
    return _out(card, base)


@router.post("/api/cards/{user}/reset-password")
async def reset_password(
    user: UserId, body: Lifetime, account: Instructor, cards: Cards, base: PublicBase
) -> CardOut:
    """A new password for `user` (every session of theirs ends, and their older card) and a
    new card that prints it; the credentials file keeps the new password."""
    card = await cards.reset_password(user, body.seconds(), account.name)
    return _out(card, base)


@router.delete("/api/cards/{user}")
async def revoke_card(user: UserId, account: Instructor, cards: Cards) -> Done:
    """`user`'s card stops working (their sessions and password stay)."""
    await cards.revoke(user, account.name)
    return Done()


def _out(card: IssuedCard, base: str) -> CardOut:
    shown = printed(card, base)
    return CardOut(**vars(shown), html=card_html(shown))
