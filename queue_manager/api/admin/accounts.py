"""Participant accounts for the instructor (`/admin/api/accounts`): make one, remove one (and
its files). What `comfy-workshop rehearse` uses for its stand-in participants; instructors'
accounts stay with `comfy-workshop users` on the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from queue_manager.core.accounts import Role
from queue_manager.core.ids import UserId
from queue_manager.service.participant_accounts import ParticipantAccounts

from ..auth import Instructor
from ..deps import get_accounts, get_service

router = APIRouter(prefix="/api/accounts", tags=["admin"])


async def get_participant_accounts(request: Request) -> ParticipantAccounts:
    service = await get_service(request)
    return ParticipantAccounts(await get_accounts(request), service, service.settings.data_dir)


Participants = Annotated[ParticipantAccounts, Depends(get_participant_accounts)]


class NewAccount(BaseModel):
    name: str = Field(max_length=64, description="Lowercase letters, digits, '-' and '_'.")
    password: str | None = Field(
        default=None, max_length=200, description="Default: a random one, in the answer only."
    )


class MadeAccount(BaseModel):
    name: UserId
    role: Role
    password: str


class Removed(BaseModel):
    ok: bool = True
    folders: int = Field(description="How many of the user's folders were removed.")


@router.post("", status_code=201, response_model=MadeAccount)
async def make_account(body: NewAccount, account: Instructor, cases: Participants) -> JSONResponse:
    """A new participant account; its password is in this answer only."""
    made, password = await cases.create(body.name, body.password, account.name)
    shown = MadeAccount(name=made.name, role=made.role, password=password)
    return JSONResponse(shown.model_dump(), 201, headers={"Cache-Control": "no-store"})


@router.delete("/{user}")
async def remove_account(
    user: str, account: Instructor, cases: Participants, files: bool = False
) -> Removed:
    """Remove a participant's account: their queued and running jobs are cancelled, every
    session ends; `files=true` removes their outputs, uploads and user data too. Their
    finished jobs stay in the records."""
    return Removed(folders=await cases.remove(user, account.name, files))
