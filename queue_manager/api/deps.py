"""Dependencies shared by routers: the service, the accounts, the users' files, the calling
worker. All are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a thread
hop on every request for what is an attribute read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from queue_manager.core.credentials import WorkerCredential
from queue_manager.core.ids import WorkerId
from queue_manager.service.accounts import Accounts
from queue_manager.service.queue import QueueService
from queue_manager.service.setting_defaults import SettingDefaults
from queue_manager.storage.files import FileStore


async def get_service(request: Request) -> QueueService:
    service: QueueService = request.app.state.service
    return service


async def get_accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


async def get_files(request: Request) -> FileStore:
    files: FileStore = request.app.state.files
    return files


async def get_setting_defaults(request: Request) -> SettingDefaults:
    defaults: SettingDefaults = request.app.state.setting_defaults
    return defaults


async def get_credential(request: Request) -> WorkerCredential:
    """The caller named by a `Bearer` worker token or job lease token; participants'
    credentials never pass."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    service = await get_service(request)
    found = await service.worker_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise HTTPException(401, "a valid worker token is required", {"WWW-Authenticate": "Bearer"})
    return found


async def get_worker(
    credential: Annotated[WorkerCredential, Depends(get_credential)],
) -> WorkerId:
    """The worker by its own token (joining, claiming, leaving): a lease token is refused."""
    return credential.whole()


Service = Annotated[QueueService, Depends(get_service)]
AccountCases = Annotated[Accounts, Depends(get_accounts)]
Files = Annotated[FileStore, Depends(get_files)]
Defaults = Annotated[SettingDefaults, Depends(get_setting_defaults)]
Worker = Annotated[WorkerId, Depends(get_worker)]
# A job route's caller: the route names the job and attempt (`WorkerCredential.acting_on`).
JobCaller = Annotated[WorkerCredential, Depends(get_credential)]
