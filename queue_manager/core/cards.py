"""Login cards (pure): the single-use login link a printed card's QR code carries, how long it
lives, and what a card shows.

A link is `PUBLIC_URL/login/card/<token>`, the token 32 random bytes (`secrets.token_urlsafe`).
Redis keeps only the token's SHA-256 (`card_digest`): whoever reads the store, a backup or a log
line learns nothing that logs anyone in. A card is bound to its account's password as it was
when the card was made, so a password reset (from anywhere) ends the old card with the old
password printed on it; making a new card for a user ends that user's older one (one card
valid per user: the one in their hands, never a copy left on the printer). Used once: the
first request consumes it, atomically (`store/lua/card_redeem.lua`).
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from queue_manager.core.accounts import Role
from queue_manager.core.ids import UserId

TOKEN_BYTES = 32
LINK_PATH = "login/card/"
DEFAULT_LIFETIME = 12 * 3600.0
MIN_LIFETIME = 60.0
MAX_LIFETIME = 30 * 86400.0

# What `secrets.token_urlsafe(32)` makes: 43 characters of the URL-safe alphabet. Anything else
# (truncated, extended, another alphabet) is refused before Redis is asked.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_LIFETIME = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class CardState(enum.StrEnum):
    """Where a user's newest card stands (the dashboard's column)."""

    NONE = "none"  # never made, or forgotten once long expired
    ACTIVE = "active"  # not used yet, in date
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"  # a newer card, or the instructor's "revoke"
    STALE = "stale"  # the password changed since: the card no longer logs in


class Redeemed(enum.StrEnum):
    """What following a login link did. Only OPENED logs anyone in."""

    OPENED = "opened"
    UNKNOWN = "unknown"  # never issued, tampered, or forgotten
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    STALE = "stale"  # the account is gone, or its password changed since the card was made


@dataclass(frozen=True)
class IssuedCard:
    """A card just made: the only time its token exists outside the card itself. `password`
    is what the card prints: None when it is not known (changed since the credentials file
    was written)."""

    user: UserId
    role: Role
    card_id: str
    token: str
    expires: float
    password: str | None = None


@dataclass(frozen=True)
class CardStatus:
    user: UserId
    role: Role
    state: CardState
    card_id: str = ""
    issued: float = 0.0
    expires: float = 0.0
    at: float = 0.0  # when it was used or revoked


@dataclass(frozen=True)
class PrintedCard:
    """Everything one printed card shows. `password` None: not known (changed since the
    workshop's credentials file was written); the card says to ask the instructor."""

    user: UserId
    role: Role
    url: str
    password: str | None
    link: str
    card_id: str
    expires: float


def new_card_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_card_id() -> str:
    """A short name printed on the card, so the instructor can tell two prints apart."""
    return secrets.token_hex(3)


def is_card_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def card_digest(token: str) -> str:
    """What Redis keeps of a token (its key): SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def binding(password_hash: str, role: Role) -> str:
    """What a card is bound to (SHA-1 of the password hash and role, as `card_issue.lua` makes
    it with `redis.sha1hex`): any change of either ends the card."""
    return hashlib.sha1(
        f"{password_hash}\n{role.value}".encode(), usedforsecurity=False
    ).hexdigest()


def state_of(stored: str, expires: float, bound: str, current: str | None, now: float) -> CardState:
    """A card's state from its record (`stored`: '', 'used' or 'revoked') and the binding of its
    account now (`current`, None when the account is gone)."""
    if stored:
        return CardState(stored)
    if expires <= now:
        return CardState.EXPIRED
    return CardState.ACTIVE if bound == current else CardState.STALE


def parse_lifetime(text: str) -> float:
    """`12h`, `90m`, `2h30m`, `1d`, `45s` -> seconds; ValueError with the rule otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _LIFETIME.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"a lifetime is like 12h, 90m, 2h30m or 1d, not {text!r}")
    seconds = sum(float(number) * _UNIT[unit] for number, unit in parts)
    if not MIN_LIFETIME <= seconds <= MAX_LIFETIME:
        raise ValueError(f"a card lives between 1 minute and 30 days, not {text!r}")
    return seconds


def public_url(url: str) -> str:
    """The address participants open (`https://workshop.example/`), normalized to end with a
    slash; ValueError unless it is an absolute http(s) URL without query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the public URL must look like https://workshop.example/, not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the public URL takes no query or fragment: {url!r}")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def login_link(base_url: str, token: str) -> str:
    return f"{public_url(base_url)}{LINK_PATH}{token}"


def home_of(user: UserId, role: Role) -> str:
    """Where a login lands: the participant's page, or the dashboard."""
    return "/admin/" if role is Role.INSTRUCTOR else f"/{user}/"


def printed(card: IssuedCard, base_url: str) -> PrintedCard:
    url = public_url(base_url)
    return PrintedCard(
        card.user,
        card.role,
        f"{url}{home_of(card.user, card.role).lstrip('/')}",
        card.password,
        login_link(url, card.token),
        card.card_id,
        card.expires,
    )
