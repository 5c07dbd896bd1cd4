"""Participant accounts the instructor makes and removes over the admin API, without a shell on
the server: a rehearsal's stand-in participants (`comfy-workshop rehearse`), a latecomer.

Only participants: an instructor's account is made and removed with `comfy-workshop users` on
the server, so a stolen dashboard session cannot lock the instructor out. Removing an account
first cancels its queued and running jobs (an output arriving after its folder went would make
the folder again), then ends its sessions (open pages and sockets are told) and, when asked,
removes its folders (outputs, uploads, user data); its finished jobs stay in the instructor's
records.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from queue_manager.core.accounts import Account, AccountError, Role
from queue_manager.core.errors import AccountExists, AccountInvalid, AccountNotFound
from queue_manager.core.ids import UserId
from queue_manager.core.room_reset import FOLDERS
from queue_manager.service.accounts import Accounts
from queue_manager.service.queue import QueueService
from queue_manager.storage.clearing import clear_user_folders
from queue_manager.store.accounts import new_password

log = logging.getLogger(__name__)

# Every folder below DATA that holds a folder per user (outputs, inputs, temp, userdata).
USER_FOLDERS = tuple(top for tops in FOLDERS.values() for top in tops)


class ParticipantAccounts:
    def __init__(self, accounts: Accounts, queue: QueueService, data_dir: Path) -> None:
        self._accounts = accounts
        self._queue = queue
        self._data_dir = data_dir

    async def create(self, name: str, password: str | None, by: str) -> tuple[Account, str]:
        """A new participant account and its password (`password`, or a random one)."""
        if await self._accounts.get(name) is not None:
            raise AccountExists(name)
        chosen = password or new_password()
        try:
            account = await self._accounts.add(name, Role.PARTICIPANT, chosen)
        except AccountError as exc:  # a bad name or password, or taken a moment ago
            raise AccountInvalid(str(exc)) from exc
        log.info("participant account made user=%s by=%s", name, by)
        return account, chosen

    async def remove(self, name: str, by: str, files: bool) -> int:
        """Remove a participant's account (and with `files` their folders); returns how many
        folders were removed."""
        account = await self._accounts.get(name)
        if account is None:
            raise AccountNotFound(name)
        if account.role is not Role.PARTICIPANT:
            raise AccountInvalid(
                f"{name} is an instructor: remove it on the server with "
                f"`comfy-workshop users remove {name}`"
            )
        user = UserId(name)
        await self._queue.remove_queued(user, None)
        await self._queue.interrupt(user, None)
        try:
            await self._accounts.remove(name)
        except AccountError as exc:  # removed a moment ago by someone else
            raise AccountNotFound(name) from exc
        removed = 0
        if files:  # blocking file work, off the event loop
            removed = await asyncio.to_thread(
                clear_user_folders, self._data_dir, USER_FOLDERS, [user]
            )
        log.info("participant account removed user=%s folders=%d by=%s", name, removed, by)
        return removed
