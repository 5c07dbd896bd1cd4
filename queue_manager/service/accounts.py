"""Who may log in, and for how long: the account use cases behind the login form, HTTP Basic,
the instructor's sign-out controls and the `users` command.

Passwords are checked by the store (argon2, off the event loop), behind login throttling
(`core/throttling.py`): the throttle is asked before argon2 runs, so refused guesses cost no
CPU. Sessions live in the account's record (`core/accounts.py`), so ending one takes effect in
every process at the next request, and its open sockets are told through the event stream.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from queue_manager.core.accounts import Account, AccountRecord, Role, Session, SignOutReason
from queue_manager.core.clock import Clock
from queue_manager.core.errors import AccountNotFound, LoginThrottled
from queue_manager.core.ids import SessionId, UserId, new_session_id
from queue_manager.core.throttling import address_bucket
from queue_manager.settings import Settings
from queue_manager.store.accounts import AccountStore, fingerprint
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner
from queue_manager.store.throttle import LoginThrottle

log = logging.getLogger(__name__)


def open_accounts(redis: Redis, settings: Settings, clock: Clock = time.time) -> Accounts:
    keys = Keys(settings.key_prefix)
    throttle = LoginThrottle(ScriptRunner(redis, keys, clock), settings.login_limits())
    return Accounts(AccountStore(redis, keys, clock), throttle, settings.session_hours, clock)


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        throttle: LoginThrottle,
        session_hours: float,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._throttle = throttle
        self._session_seconds = session_hours * 3600
        self._clock = clock
        self._checking: dict[tuple[object, ...], asyncio.Task[AccountRecord | None]] = {}

    async def get(self, name: str) -> Account | None:
        return await self._store.get(name)

    async def all(self) -> list[Account]:
        return await self._store.all()

    async def by_session(self, name: str, session: SessionId) -> Account | None:
        """The account behind a session cookie, while that session lives (every request with
        a cookie: one read, quiet)."""
        record = await self._store.record(name)
        if record is None or not record.has_session(session, self._clock()):
            return None
        return record.account

    async def verify(self, name: str, password: str, address: str) -> Account | None:
        """The account if the password is right (every HTTP Basic request: quiet); raises
        LoginThrottled instead of checking while `address` must wait."""
        record = await self._checked(name, password, address)
        return record.account if record else None

    async def log_in(self, name: str, password: str, address: str) -> Session | None:
        """The login form: like `verify`, and a session opens; the outcome is logged (never
        the password)."""
        record = await self._checked(name, password, address)
        if record is None:
            log.info("login refused user=%r address=%s", name, address)
            return None
        session = Session(record.account, new_session_id())
        expires = self._clock() + self._session_seconds
        if not await self._store.open_session(record, session.id, expires):
            log.info("login refused user=%s address=%s: password changed meanwhile", name, address)
            return None
        log.info("logged in user=%s role=%s address=%s", name, record.account.role, address)
        return session

    async def log_out(self, name: str, session: SessionId) -> None:
        """End this one session (the other browsers of the account stay logged in)."""
        await self._store.end_sessions(name, SignOutReason.LOGOUT, session)
        log.info("logged out user=%s", name)

    async def sign_out(self, name: str, by: str) -> None:
        """End every session of `name` (HTTP Basic is no session: a password reset ends it)."""
        if not await self._store.end_sessions(name, SignOutReason.EVERYWHERE):
            raise AccountNotFound(name)
        log.info("signed out everywhere user=%s by=%s", name, by)

    async def sign_out_room(self, by: str) -> list[UserId]:
        """End every participant's sessions; instructors keep theirs (the dashboard that asks
        must stay, and an instructor can sign out their own with `sign_out`)."""
        ended = await self._store.end_room_sessions(SignOutReason.ROOM)
        log.info("signed out the room users=%d by=%s", len(ended), by)
        return ended

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

    async def set_role(self, name: str, role: Role) -> None:
        await self._store.set_role(name, role)
        log.info("role changed user=%s role=%s", name, role)

    async def _checked(self, name: str, password: str, address: str) -> AccountRecord | None:
        """The record if the password is right. A success remembered from the last minutes
        passes at once. Otherwise the same check already under way (a script's burst of HTTP
        Basic requests) is shared: one throttle charge and one argon2 for the lot, so a burst
        of right passwords is never refused for the attempts it has in flight."""
        record = await self._store.record(name)
        if record is not None and self._store.remembered(record, password):
            return record
        bucket = address_bucket(address)
        key = (*fingerprint(name, record, password), bucket)
        check = self._checking.get(key)
        if check is None:
            check = asyncio.ensure_future(self._check(name, password, record, bucket))
            self._checking[key] = check
            check.add_done_callback(lambda _: self._checking.pop(key, None))
        return await asyncio.shield(check)  # one caller giving up does not cancel the others'

    async def _check(
        self, name: str, password: str, record: AccountRecord | None, bucket: str
    ) -> AccountRecord | None:
        """Ask the throttle first, then argon2."""
        wait = await self._throttle.attempt(name, bucket)
        if wait > 0:
            # DEBUG: a storm would otherwise log a line per refused guess. The failures that
            # reached argon2 (which the throttle keeps few) are logged by `log_in`.
            log.debug("login throttled user=%s address=%s wait=%.1fs", name, bucket, wait)
            raise LoginThrottled(name, wait)
        if not await self._store.password_matches(record, password):
            return None
        await self._throttle.succeeded(name, bucket)
        return record
