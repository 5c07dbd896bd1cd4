"""Who is who: accounts, their roles, the rules for names and passwords, the lane a role
submits into (priority comes from who is asking, never from the request), and an account's
login sessions.

A session is live while its id is in the account's record and in date. The record is what every
request reads anyway, so checking the session costs nothing more, and ending sessions is one
change to that record (`store/lua/`): logout removes one id; "sign out everywhere", a password
reset and a role change remove them all; removing the account removes the record. Every
queue-manager process reads the same record, so no process can keep an ended session alive.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from queue_manager.core.ids import SessionId, UserId, is_name
from queue_manager.core.jobs import Lane

MIN_PASSWORD = 8
# Sessions kept per account (browsers, phones); a login beyond this ends the oldest one.
MOST_SESSIONS = 32
# First path segments the server itself uses: an account of that name would have no page.
RESERVED_NAMES = frozenset(
    {
        "admin",
        "api",
        "assets",
        "docs",
        "redoc",
        "login",
        "logout",
        "metrics",
        "healthz",
        "readyz",
        "worker",
        "openapi.json",
        "static",
        "internal",
        "extensions",
        "ws",
    }
)


class Role(enum.StrEnum):
    INSTRUCTOR = "instructor"
    PARTICIPANT = "participant"


@dataclass(frozen=True)
class Account:
    name: UserId
    role: Role

    @property
    def lane(self) -> Lane:
        """The lane this account's Run clicks go into."""
        return Lane.INSTRUCTOR if self.role is Role.INSTRUCTOR else Lane.NORMAL


@dataclass(frozen=True)
class AccountRecord:
    """What is kept for an account: who it is, its password's argon2 hash, and its live
    sessions (id -> when it expires, seconds since the epoch)."""

    account: Account
    password_hash: str
    sessions: Mapping[str, float] = field(default_factory=dict)

    def has_session(self, session: SessionId, now: float) -> bool:
        return self.sessions.get(session, 0.0) > now


@dataclass(frozen=True)
class Session:
    """A login: the account and the session id its cookie names."""

    account: Account
    id: SessionId


class SignOutReason(enum.StrEnum):
    """Why an account's sessions ended (announced with the `account.signed_out` event)."""

    LOGOUT = "logout"
    EVERYWHERE = "signed out everywhere"
    ROOM = "room signed out"
    PASSWORD = "password reset"
    ROLE = "role changed"
    REMOVED = "account removed"


class AccountError(ValueError):
    """A refused account change (bad name or password, existing or unknown account)."""


def check_name(name: str) -> None:
    if not is_name(name):
        raise AccountError("names are lowercase letters, digits, '-' and '_' (at most 64)")
    if name in RESERVED_NAMES:
        raise AccountError(f"{name!r} is a path the server uses; pick another name")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"passwords have at least {MIN_PASSWORD} characters")
