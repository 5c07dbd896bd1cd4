"""Who is who: accounts, their roles, the rules for names and passwords, and the lane a role
submits into (priority comes from who is asking, never from the request)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from queue_manager.core.ids import UserId, is_name
from queue_manager.core.jobs import Lane

MIN_PASSWORD = 8
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
