"""Login cards: the use cases behind `comfy-workshop cards`, the dashboard's cards page and the
login link itself (`core/cards.py` has the rules).

Following a link opens a session exactly as the login form does (`Accounts.log_in`): a new
session id in the account's record, for the very password hash the card was bound to, so a
reset that lands in between wins. Every link that logs nobody in counts as a wrong password
from that address (`core/throttling.py`), under one name that is no account; a link that works
takes its charge back, as a right password does. Tokens and passwords are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from queue_manager.core.accounts import Account, AccountRecord, Role, Session
from queue_manager.core.cards import (
    CardState,
    CardStatus,
    IssuedCard,
    Redeemed,
    binding,
    card_digest,
    is_card_token,
    new_card_id,
    new_card_token,
    state_of,
)
from queue_manager.core.clock import Clock
from queue_manager.core.errors import AccountNotFound, LoginThrottled
from queue_manager.core.ids import UserId, new_session_id
from queue_manager.core.throttling import address_bucket
from queue_manager.settings import Settings
from queue_manager.storage.credentials import FILE_NAME, CredentialsFile
from queue_manager.store.accounts import AccountStore, new_password
from queue_manager.store.cards import CardStore, NewCard
from queue_manager.store.keys import Keys
from queue_manager.store.scripts import ScriptRunner
from queue_manager.store.throttle import LoginThrottle

log = logging.getLogger(__name__)

# The throttle's name for card logins: not an account name, so it shares the count of names
# that are no account (`store/throttle.py`), and the per-address count with the login form.
CARD_LOGIN = "?card"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CardLogin:
    outcome: Redeemed
    session: Session | None = None  # OPENED only


def open_login_cards(redis: Redis, settings: Settings, clock: Clock = time.time) -> LoginCards:
    keys = Keys(settings.key_prefix)
    scripts = ScriptRunner(redis, keys, clock)
    return LoginCards(
        CardStore(scripts),
        AccountStore(redis, keys, clock),
        LoginThrottle(scripts, settings.login_limits()),
        CredentialsFile(Path(settings.data_dir) / FILE_NAME),
        settings.session_hours,
        clock,
    )


class LoginCards:
    def __init__(
        self,
        cards: CardStore,
        accounts: AccountStore,
        throttle: LoginThrottle,
        credentials: CredentialsFile,
        session_hours: float,
        clock: Clock = time.time,
    ) -> None:
        self._cards = cards
        self._accounts = accounts
        self._throttle = throttle
        self._credentials = credentials
        self._session_seconds = session_hours * 3600
        self._clock = clock

    async def participants(self) -> list[UserId]:
        return [a.name for a in await self._accounts.all() if a.role is Role.PARTICIPANT]

    async def statuses(self) -> list[CardStatus]:
        """Every account's newest card and where it stands (no token: those are never kept)."""
        records = [
            r for a in await self._accounts.all() if (r := await self._accounts.record(a.name))
        ]
        newest = await self._cards.newest([r.account.name for r in records])
        now = self._clock()
        return [_status(r, newest.get(r.account.name), now) for r in records]

    async def issue(
        self,
        users: Sequence[str],
        lifetime: float,
        by: str,
        *,
        reset_passwords: bool = False,
        progress: Progress | None = None,
    ) -> list[IssuedCard]:
        """A new card for each user (their older card stops working); with `reset_passwords`
        each gets a new password too (their sessions end; written to the credentials file).
        An unknown name raises AccountNotFound and changes nothing."""
        records = await self._records(users)
        if reset_passwords:
            passwords = await self._reset(records)
        else:
            passwords = await self._known_passwords(records, progress)
        expires = self._clock() + lifetime
        made = [_new_card(r, expires, passwords.get(r.account.name)) for r in records]
        new = [NewCard(c.user, card_digest(c.token), c.card_id) for c in made]
        if (missing := await self._cards.issue(new, expires)) is not None:
            raise AccountNotFound(missing)  # removed meanwhile: no card was made
        log.info("login cards made users=%d by=%s reset=%s", len(made), by, reset_passwords)
        return made

    async def reset_password(self, user: str, lifetime: float, by: str) -> IssuedCard:
        """New password (every session of the account ends) and a new card, in one action."""
        (card,) = await self.issue([user], lifetime, by, reset_passwords=True)
        return card

    async def revoke(self, user: str, by: str) -> None:
        """The user's card stops working (their sessions stay)."""
        if await self._cards.issue([NewCard(UserId(user), "")], self._clock()) is not None:
            raise AccountNotFound(user)
        log.info("login card revoked user=%s by=%s", user, by)

    async def redeem(self, token: str, address: str) -> CardLogin:
        """Follow a login link once: a session for its account, or why not. Raises
        LoginThrottled while this address must wait (nothing is looked at then)."""
        bucket = address_bucket(address)
        wait = await self._throttle.attempt(CARD_LOGIN, bucket)
        if wait > 0:
            raise LoginThrottled(CARD_LOGIN, wait)
        if not is_card_token(token):
            log.info("login card refused: not a card address=%s", bucket)
            return CardLogin(Redeemed.UNKNOWN)
        found = await self._cards.redeem(card_digest(token))
        session = await self._open(found.record) if found.record is not None else None
        if session is None:
            outcome = Redeemed.STALE if found.record is not None else found.outcome
            log.info("login card refused user=%s why=%s address=%s", found.user, outcome, bucket)
            return CardLogin(outcome)
        await self._throttle.succeeded(CARD_LOGIN, bucket)
        role = session.account.role
        log.info("logged in with a card user=%s role=%s address=%s", found.user, role, bucket)
        return CardLogin(Redeemed.OPENED, session)

    async def _open(self, record: AccountRecord) -> Session | None:
        session = Session(record.account, new_session_id())
        expires = self._clock() + self._session_seconds
        opened = await self._accounts.open_session(record, session.id, expires)
        return session if opened else None

    async def _records(self, users: Sequence[str]) -> list[AccountRecord]:
        records = []
        for name in dict.fromkeys(users):
            record = await self._accounts.record(name)
            if record is None:
                raise AccountNotFound(name)
            records.append(record)
        return records

    async def _reset(self, records: Sequence[AccountRecord]) -> dict[UserId, str]:
        passwords = {r.account.name: new_password() for r in records}
        for record in records:
            await self._accounts.reset(record.account.name, passwords[record.account.name])
            log.info("password reset for a login card user=%s", record.account.name)
        rows: dict[str, tuple[str, str]] = {
            r.account.name: (r.account.role.value, passwords[r.account.name]) for r in records
        }
        try:
            await asyncio.to_thread(self._credentials.update, rows)
        except OSError as exc:  # the cards still print the new passwords
            log.warning("new passwords not written to %s: %s", self._credentials.path, exc)
        return passwords

    async def _known_passwords(
        self, records: Sequence[AccountRecord], progress: Progress | None
    ) -> dict[UserId, str]:
        """The passwords in the credentials file that still open their account (argon2, one at
        a time: each check takes tens of MB for tens of ms)."""
        rows = await asyncio.to_thread(self._credentials.read)
        known: dict[UserId, str] = {}
        for done, record in enumerate(records, start=1):
            row = rows.get(record.account.name)
            if row is not None and await self._opens(record, row[1]):
                known[record.account.name] = row[1]
            if progress is not None:
                progress(done, len(records))
        return known

    async def _opens(self, record: AccountRecord, password: str) -> bool:
        store = self._accounts
        return store.remembered(record, password) or await store.password_matches(record, password)


def _new_card(record: AccountRecord, expires: float, password: str | None) -> IssuedCard:
    account = record.account
    token = new_card_token()
    return IssuedCard(account.name, account.role, new_card_id(), token, expires, password)


def _status(record: AccountRecord, card: dict[str, str] | None, now: float) -> CardStatus:
    account: Account = record.account
    if card is None:
        return CardStatus(account.name, account.role, CardState.NONE)
    expires = float(card["expires"])
    current = binding(record.password_hash, account.role)
    return CardStatus(
        account.name,
        account.role,
        state_of(card["state"], expires, card["bound"], current, now),
        card["card"],
        float(card["issued"]),
        expires,
        float(card["at"] or 0.0),
    )
