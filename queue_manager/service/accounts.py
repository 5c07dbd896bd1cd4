"""Who may log in: the account use cases behind the login form, HTTP Basic and the `users`
command. Passwords are checked by the store (argon2, off the event loop)."""

from __future__ import annotations

import logging

from queue_manager.core.accounts import Account, Role
from queue_manager.store.accounts import AccountStore

log = logging.getLogger(__name__)


class Accounts:
    def __init__(self, store: AccountStore) -> None:
        self._store = store

    async def get(self, name: str) -> Account | None:
        return await self._store.get(name)

    async def all(self) -> list[Account]:
        return await self._store.all()

    async def verify(self, name: str, password: str) -> Account | None:
        """The account if the password is right (every HTTP Basic request: quiet)."""
        return await self._store.verify(name, password)

    async def log_in(self, name: str, password: str) -> Account | None:
        """The login form: like `verify`, and the outcome is logged (never the password)."""
        account = await self._store.verify(name, password)
        if account is None:
            log.info("login refused user=%s", name)
        else:
            log.info("logged in user=%s role=%s", account.name, account.role)
        return account

    async def add(self, name: str, role: Role, password: str) -> Account:
        account = await self._store.add(name, role, password)
        log.info("account added user=%s role=%s", name, role)
        return account

    async def remove(self, name: str) -> None:
        await self._store.remove(name)
        log.info("account removed user=%s", name)

    async def reset(self, name: str, password: str) -> None:
        await self._store.reset(name, password)
        log.info("password reset user=%s", name)
