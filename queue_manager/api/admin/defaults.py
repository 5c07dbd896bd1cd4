"""The participants' default ComfyUI settings, for the instructor (`/admin/api/defaults`): a
participant's own saved settings always win; these fill in the rest, on their next page load."""

from __future__ import annotations

from fastapi import APIRouter, Request

from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import SettingDefaultInvalid
from queue_manager.core.setting_defaults import MAX_DEFAULTS, MAX_VALUE_BYTES

from ..auth import Instructor
from ..deps import Defaults

router = APIRouter(prefix="/api/defaults", tags=["admin"])

# Every default at its largest, with room for the ids: reading stops past it.
_MAX_BODY = MAX_DEFAULTS * 1024 + MAX_VALUE_BYTES


@router.get("")
async def list_defaults(_: Instructor, defaults: Defaults) -> dict[str, object]:
    """Every default setting: id -> JSON value."""
    return await defaults.all()


@router.put("")
async def replace_defaults(
    request: Request, account: Instructor, defaults: Defaults
) -> dict[str, object]:
    """Replace them all with the body's JSON object (id -> value); one that is wrong changes
    nothing and says which."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise SettingDefaultInvalid(f"the defaults are over {_MAX_BODY} bytes")
    wanted = parse_json(bytes(body), strict=True)
    if not isinstance(wanted, dict):
        raise SettingDefaultInvalid('a JSON object of setting id -> value, e.g. {"Comfy.X": true}')
    await defaults.replace(wanted, account.name)
    return await defaults.all()
