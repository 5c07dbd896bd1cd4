"""`comfy-workshop worker-token create|list|revoke NAME`: the operator's side of worker tokens."""

from __future__ import annotations

import asyncio

from queue_manager.cli.target import workshop_settings
from queue_manager.core.ids import WorkerId
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.tokens import TokenStore


def run_token_command(settings: Settings, action: str, name: str | None) -> int:
    return asyncio.run(_run(workshop_settings(settings), action, name))


async def _run(settings: Settings, action: str, name: str | None) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    tokens = TokenStore(redis, Keys(settings.key_prefix))
    try:
        if action == "list":
            for worker in await tokens.names():
                print(worker)
            return 0
        if not name:
            print(f"worker-token {action}: a worker name is required")
            return 2
        if action == "create":
            try:
                token = await tokens.create(WorkerId(name))
            except ValueError as exc:
                print(f"worker-token create: {exc}")
                return 2
            print(token)  # shown once; only its hash is kept
            return 0
        removed = await tokens.revoke(WorkerId(name))
        print(f"revoked {name}" if removed else f"no token for {name}")
        return 0 if removed else 1
    finally:
        await redis.aclose()
