"""ComfyUI's user-data API for `/{user}/`: settings, saved workflows and other user files.

The page keeps its settings and workflows on the server (`GET /users` says so) and calls these
routes as ComfyUI 0.25.0 answers them: same status codes, body shapes and content types. Each
participant has their own folder (`DATA/userdata/<user>/`); the owner dependency makes sure
nobody else reaches it, `userdata_paths` that no name leaves it, `storage.userdata` how the
disk is touched.

`{file}` arrives URL-encoded in one segment (`workflows%2Fa.json`), which routing has already
decoded; a move (`{file}/move/{dest}`) is told from a file by the raw, still-encoded path.
"""

from __future__ import annotations

import asyncio
import mimetypes
from email.utils import formatdate
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from queue_manager.api.bodies import check_declared_length, read_capped
from queue_manager.api.deps import Defaults, Service
from queue_manager.api.participant.access import Owner
from queue_manager.api.participant.workshop_folder import (
    is_published_folder,
    published_entries,
    published_file,
    refuse_change,
    save_target,
    without_workshop,
)
from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import (
    MalformedBody,
    UserDataInvalid,
    UserDataMissing,
)
from queue_manager.storage.userdata import CHUNK, OpenedFile, UserDataStore
from queue_manager.storage.userdata_paths import (
    etag,
    file_info,
    listing_item,
    raw_tail,
    split_move,
    user_path,
    v2_listing,
)

router = APIRouter()
internal = APIRouter()

# What the page asks for on every load and ComfyUI answers 404 until the participant has one
# (the browser then logs an error each time): answered as the page reads a missing one.
# Folders it lists (`GET /userdata?dir=`) read as empty; files as an empty stylesheet and an
# empty node-template list (the frontend takes a 404 and these alike).
_LISTED_FROM_THE_START = {PurePosixPath("workflows"), PurePosixPath("subgraphs")}
_READ_FROM_THE_START = {
    PurePosixPath("user.css"): ("text/css; charset=utf-8", b""),
    PurePosixPath("comfy.templates.json"): ("application/json; charset=utf-8", b"[]"),
}


class ComfyJSON(JSONResponse):
    """JSON as aiohttp sends it (ComfyUI's `web.json_response`), charset included."""

    media_type = "application/json; charset=utf-8"


async def get_store(request: Request, service: Service) -> UserDataStore:
    """One store per app: its per-user locks must be shared by all requests."""
    store = getattr(request.app.state, "userdata_store", None)
    if not isinstance(store, UserDataStore):
        settings = service.settings
        store = UserDataStore(settings.data_dir, settings.max_userdata_bytes)
        request.app.state.userdata_store = store
    return store


Store = Annotated[UserDataStore, Depends(get_store)]


# Settings -------------------------------------------------------------------------------------


@router.get("/users")
async def get_users(account: Owner) -> ComfyJSON:
    """Single-user answer: settings live on the server, nothing to migrate from the browser."""
    return ComfyJSON({"storage": "server", "migrated": True})


@router.get("/settings")
async def get_settings(account: Owner, store: Store, defaults: Defaults) -> ComfyJSON:
    """The participant's settings, and the workshop's defaults for those they never set."""
    own = await store.read_settings(account.name)
    return ComfyJSON(await defaults.for_participant(own))


@router.get("/settings/{setting_id}")
async def get_setting(
    setting_id: str, account: Owner, store: Store, defaults: Defaults
) -> ComfyJSON:
    """The value (the workshop's default if the participant never set it), or `null`."""
    own = await store.read_settings(account.name)
    return ComfyJSON((await defaults.for_participant(own)).get(setting_id))


@router.post("/settings", response_class=Response)
async def post_settings(request: Request, account: Owner, store: Store) -> Response:
    """Merge a JSON object into the settings; 200 with an empty body, as ComfyUI."""
    changes = await _json_body(request, store.max_bytes)
    if not isinstance(changes, dict):
        raise UserDataInvalid("the settings must be a JSON object")
    await store.update_settings(account.name, changes)
    return Response()


@router.post("/settings/{setting_id}", response_class=Response)
async def post_setting(setting_id: str, request: Request, account: Owner, store: Store) -> Response:
    """Set one setting to the JSON value of the body (sent as `text/plain` by the page)."""
    value = await _json_body(request, store.max_bytes)
    await store.update_settings(account.name, {setting_id: value})
    return Response()


# Files ----------------------------------------------------------------------------------------


@router.get("/userdata")
async def list_userdata(
    account: Owner,
    store: Store,
    service: Service,
    directory: Annotated[str, Query(alias="dir")] = "",
    recurse: str = "",
    split: str = "",
    full_info: str = "",
) -> ComfyJSON:
    """The files of a folder: paths, `[path, *parts]` (`split`) or file info (`full_info`).
    404 "Directory not found" for a folder that is not there, except those the page lists on
    every load (empty until the participant saves one)."""
    if not directory:
        raise UserDataInvalid("Directory not provided")
    rel = user_path(directory)
    deep = recurse.lower() == "true"
    published = await published_entries(service, account.name, rel, recurse=deep, folders=False)
    try:
        own = without_workshop(await store.list_files(account.name, rel, recurse=deep))
    except UserDataMissing:
        if rel not in _LISTED_FROM_THE_START and not await is_published_folder(service, rel):
            raise
        own = []
    entries = own + published
    full, parts = full_info.lower() == "true", split.lower() == "true"
    return ComfyJSON([listing_item(e, rel, full_info=full, split=parts) for e in entries])


@router.get("/v2/userdata")
async def list_userdata_v2(
    account: Owner, store: Store, service: Service, path: str = ""
) -> ComfyJSON:
    """Everything under `path` (default: the whole folder), folders first."""
    rel = user_path(path, allow_root=True)
    published = await published_entries(service, account.name, rel, recurse=True, folders=True)
    try:
        own = without_workshop(await store.tree(account.name, rel))
    except UserDataMissing:
        if not await is_published_folder(service, rel):
            raise
        own = []
    mine = {e.path for e in own}
    return ComfyJSON(v2_listing(own + [e for e in published if e.path not in mine]))


@router.get("/userdata/{file:path}")
async def get_userdata(file: str, account: Owner, store: Store, service: Service) -> Response:
    rel = user_path(file)
    if (published := await published_file(service, account.name, rel)) is not None:
        content, published_at = published
        return _published_response(content, published_at)
    try:
        opened = await store.open_file(account.name, rel)
    except UserDataMissing:
        if rel not in _READ_FROM_THE_START:
            raise
        media_type, empty = _READ_FROM_THE_START[rel]
        return Response(empty, media_type=media_type, headers={"Cache-Control": "no-cache"})
    return OpenFileResponse(opened, rel.name)


@router.post("/userdata/{file:path}")
async def post_userdata(
    file: str,
    request: Request,
    account: Owner,
    store: Store,
    overwrite: str = "true",
    full_info: str = "false",
) -> ComfyJSON:
    """Save the raw body as `file`, or move `{file}/move/{dest}`; 409 "File already exists"
    when the target exists and `overwrite=false`. Answers the path or the file's info."""
    scope = request.scope
    source, dest = split_move(raw_tail(scope.get("raw_path"), scope["path"], file))
    replace = overwrite != "false"  # ComfyUI's test, case-sensitive
    if dest is None:
        rel = save_target(user_path(source))  # a Workshop workflow: the participant's own copy
        check_declared_length(request, store.max_bytes)
        entry = await store.write(account.name, rel, request.stream(), overwrite=replace)
    else:
        src, dst = user_path(source), user_path(dest)
        refuse_change(src, dst)
        entry = await store.move(account.name, src, dst, overwrite=replace)
    if full_info.lower() == "true":
        return ComfyJSON(file_info(entry, PurePosixPath()))
    return ComfyJSON(entry.path.as_posix())


@router.delete("/userdata/{file:path}", status_code=204)
async def delete_userdata(file: str, account: Owner, store: Store) -> Response:
    rel = user_path(file)
    refuse_change(rel)
    await store.delete(account.name, rel)
    return Response(status_code=204)


class OpenFileResponse(Response):
    """Sends a file the store has already opened safely (`FileResponse` would open it again by
    name, following links). The open file also pins the version being sent: a save that
    replaces it meanwhile does not mix two versions."""

    def __init__(self, opened: OpenedFile, name: str) -> None:
        self.opened = opened
        self.status_code = 200
        self.media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.background = None
        self.init_headers(
            {
                "content-type": self.media_type,
                "content-length": str(opened.size),
                "etag": etag(opened.size, opened.mtime_ns),
                "last-modified": formatdate(opened.mtime_ns / 1e9, usegmt=True),
                "accept-ranges": "bytes",
                # A user file opened as a page must not run scripts with the site's cookies.
                "x-content-type-options": "nosniff",
                "content-security-policy": "sandbox",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        file = self.opened.file
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await asyncio.to_thread(file.close)


def _published_response(content: bytes, published_at: float) -> Response:
    stamp = int(published_at * 1e9)
    return Response(
        content,
        media_type="application/json",
        headers={
            "etag": etag(len(content), stamp),
            "last-modified": formatdate(published_at, usegmt=True),
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "content-security-policy": "sandbox",
        },
    )


async def _json_body(request: Request, limit: int) -> object:
    """The body as JSON, read up to `limit` bytes; whatever its Content-Type says."""
    body = await read_capped(request, limit)
    try:
        return parse_json(body, strict=True)
    except MalformedBody as exc:
        raise UserDataInvalid("the body must be JSON") from exc
