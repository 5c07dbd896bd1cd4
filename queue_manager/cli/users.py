"""`comfy-workshop users add|remove|list|reset|role`: the operator's side of accounts. A reset,
a role change and a removal end the account's sessions at once, in every process."""

from __future__ import annotations

import asyncio

from queue_manager.cli.target import workshop_settings
from queue_manager.core.accounts import AccountError, Role
from queue_manager.service.accounts import Accounts, open_accounts
from queue_manager.settings import Settings
from queue_manager.store.accounts import new_password
from queue_manager.store.connection import connect


def run_users_command(
    settings: Settings, action: str, name: str | None, role: str, password: str | None
) -> int:
    return asyncio.run(_run(workshop_settings(settings), action, name, Role(role), password))


async def _run(
    settings: Settings, action: str, name: str | None, role: Role, password: str | None
) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    accounts = open_accounts(redis, settings)
    try:
        if action == "list":
            for account in await accounts.all():
                print(f"{account.name}\t{account.role}")
            return 0
        if not name:
            print(f"users {action}: an account name is required")
            return 2
        return await _change(accounts, action, name, role, password)
    except AccountError as exc:
        print(f"users {action}: {exc}")
        return 1
    finally:
        await redis.aclose()


async def _change(
    accounts: Accounts, action: str, name: str, role: Role, password: str | None
) -> int:
    if action == "remove":
        await accounts.remove(name)
        print(f"removed {name}")
        return 0
    if action == "role":
        await accounts.set_role(name, role)
        print(f"{name}\t{role}\tsessions ended")
        return 0
    chosen = password or new_password()
    if action == "add":
        await accounts.add(name, role, chosen)
    else:
        await accounts.reset(name, chosen)
    # Shown once: only the argon2 hash is kept.
    print(f"{name}\t{role if action == 'add' else 'password reset'}\t{chosen}")
    return 0
