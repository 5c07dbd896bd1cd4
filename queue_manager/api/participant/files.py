"""ComfyUI's file endpoints for one participant, answering as ComfyUI 0.25.0 does, on that
participant's own folders only.

* `GET`/`HEAD /view`: a file of the user's output, input or temp folder (the plain file with
  ETag, Last-Modified and ranges, or a Pillow re-encoding for `preview=` / `channel=`).
* `POST /upload/image`, `POST /upload/mask`: into the user's folder, with ComfyUI's names.
* `GET /internal/files/{output|input|temp}`: the folder's files, newest first.

The folder is the login's (`Owner`): no field, name, annotation or `original_ref` can reach
another user's files, and anything that tries to leave the folder is refused with ComfyUI's
status and empty body. ComfyUI's own refusals here are empty bodies too (400, 403, 404); the
exceptions are an upload over the size limit (413, a JSON error saying what the limit is) and
ComfyUI's own JSON 400 for an unknown `/internal/files` type.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from queue_manager.comfy import view as comfy
from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import MalformedBody, StorageLimit
from queue_manager.core.ids import UserId
from queue_manager.storage.files import FileStore
from queue_manager.storage.images import NotAnImage, apply_mask, render
from queue_manager.storage.listing import file_chunks, list_folder, open_file
from queue_manager.storage.uploads import Render, copy_bytes, store_upload

from ..deps import Files, Service
from .access import Owner

router = APIRouter()
internal = APIRouter()

# Room for the small fields and part headers around the file in an upload's body.
FORM_OVERHEAD = 64 * 1024
MAX_FIELD_BYTES = 16 * 1024  # type, subfolder, overwrite, original_ref
MAX_FIELDS = 16
MAX_FILES = 4  # ComfyUI reads `image`; a stray extra file costs disk only up to the limit


def _empty(status: int) -> Response:
    """ComfyUI's handler-level answer: the status, no body, no content type."""
    return Response(status_code=status)


def _first_values(request: Request) -> dict[str, str]:
    """The query as aiohttp's `request.rel_url.query[...]` reads it: the first of repeats."""
    return dict(reversed(request.query_params.multi_items()))


# -- /view ----------------------------------------------------------------------------------------


@router.get("/view")
@router.head("/view", include_in_schema=False)
async def view(request: Request, account: Owner, files: Files) -> Response:
    query = _first_values(request)
    ref = comfy.view_target(query)
    how = comfy.rendering(query)
    try:
        file = await asyncio.to_thread(open_file, files, ref.kind, account.name, ref.path)
    except FileNotFoundError:
        return _empty(404)
    head = request.method == "HEAD"
    if how == "file":
        return _send_file(request, file, ref.name, head)
    try:
        body, media_type = await asyncio.to_thread(render, file, how)
    except NotAnImage:
        return _empty(400)
    headers = {
        "content-disposition": comfy.content_disposition(ref.name),
        "content-type": media_type,
        "content-length": str(len(body)),
    }
    return Response(b"" if head else body, headers=headers)


def _send_file(request: Request, file: BinaryIO, name: str, head: bool) -> Response:
    """The file as aiohttp's FileResponse sends it: validators, 304, ranges (206/416)."""
    info = os.fstat(file.fileno())
    tag = comfy.etag(info.st_mtime_ns, info.st_size)
    headers = {
        "content-disposition": comfy.content_disposition(name),
        "content-type": comfy.content_type(name),
        "etag": tag,
        "last-modified": comfy.http_date(info.st_mtime),
        "accept-ranges": "bytes",
    }
    keep = False
    try:
        if comfy.not_modified(request.headers, tag, info.st_mtime):
            return Response(status_code=304, headers=_without(headers, "content-type"))
        try:
            span = comfy.byte_range(request.headers, tag, info.st_mtime, info.st_size)
        except comfy.RangeNotSatisfiable:
            return Response(status_code=416, headers={"content-range": f"bytes */{info.st_size}"})
        start, end = span or (0, info.st_size)
        status = 200
        if span is not None:
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{info.st_size}"
        headers["content-length"] = str(end - start)
        if head:
            return Response(status_code=status, headers=headers)
        keep = True  # the stream closes it
        return StreamingResponse(file_chunks(file, start, end), status, headers)
    finally:
        if not keep:
            file.close()


def _without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


# -- uploads --------------------------------------------------------------------------------------


class _BadForm(Exception):
    """Not a form ComfyUI would take: answered 400, empty."""


async def _capped(
    stream: AsyncIterator[bytes], cap: int, limit: int
) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > cap:
            raise StorageLimit(limit)
        yield chunk


async def _read_form(request: Request, limit: int) -> FormData:
    """The upload's multipart form, with the file parts spooled to anonymous temp files.

    Starlette's own multipart parser (python-multipart underneath) is used rather than
    `request.form()` so that the body stream can be capped: `request.form()` limits the number
    of parts and the size of plain fields (`max_files`, `max_fields`, `max_part_size`) but not
    the size of a file, which it would spool to disk however large. Here the declared length
    is refused before reading, and the stream is cut as soon as it passes the limit (plus room
    for the small fields): StorageLimit (413). File parts land in SpooledTemporaryFiles (memory
    up to 1 MiB, then an unlinked temp file), which the parser closes on any error, so a refused
    or broken upload leaves nothing on disk. The caller must `close()` the form.
    """
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise _BadForm("not multipart/form-data")
    cap = limit + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 18 or int(declared) > cap):
        raise StorageLimit(limit)
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), cap, limit),
        max_files=MAX_FILES,
        max_fields=MAX_FIELDS,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise _BadForm(exc.message) from exc


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _BadForm(f"{name} must be a plain field")


def _image(form: FormData, limit: int) -> UploadFile:
    image = form.get("image")
    if not isinstance(image, UploadFile) or not image.filename:
        raise _BadForm("no image file")
    if image.size is not None and image.size > limit:
        raise StorageLimit(limit)
    return image


def _original_ref(form: FormData) -> comfy.FileRef:
    raw = _field(form, "original_ref")
    if raw is None:
        raise _BadForm("no original_ref")
    try:
        ref = parse_json(raw.encode())
    except MalformedBody as exc:
        raise _BadForm("original_ref is not JSON") from exc
    return comfy.mask_original(ref)


async def _upload(
    request: Request, user: UserId, files: FileStore, limit: int, *, mask: bool
) -> Response:
    try:
        form = await _read_form(request, limit)
    except _BadForm:
        return _empty(400)
    original: BinaryIO | None = None
    try:
        image = _image(form, limit)
        subfolder = _field(form, "subfolder") or ""
        target = comfy.upload_target(_field(form, "type"), subfolder, image.filename or "")
        write: Render = copy_bytes
        if mask:
            source = _original_ref(form)
            try:
                original = await asyncio.to_thread(open_file, files, source.kind, user, source.path)
            except FileNotFoundError:
                return _empty(404)
            write = _masking(original)
        name = await store_upload(
            files,
            target.kind,
            user,
            target.path,
            image.file,
            overwrite=comfy.is_overwrite(_field(form, "overwrite")),
            render=write,
        )
    except (_BadForm, NotAnImage):
        return _empty(400)
    finally:
        if original is not None:
            original.close()
        await form.close()
    return JSONResponse({"name": name, "subfolder": subfolder, "type": target.type})


def _masking(original: BinaryIO) -> Render:
    def write(upload: BinaryIO, out: BinaryIO) -> None:
        original.seek(0)
        apply_mask(original, upload, out)

    return write


@router.post("/upload/image")
async def upload_image(
    request: Request, account: Owner, files: Files, service: Service
) -> Response:
    """`image` (the file), `type` (input, temp, output), `subfolder`, `overwrite`."""
    return await _upload(
        request, account.name, files, service.settings.max_upload_bytes, mask=False
    )


@router.post("/upload/mask")
async def upload_mask(request: Request, account: Owner, files: Files, service: Service) -> Response:
    """As `/upload/image`, storing the `original_ref` image with the uploaded mask's alpha.

    Unlike ComfyUI (which answers 200 and writes nothing), an `original_ref` that is unsafe
    is refused (400/403) and one naming a missing file answers 404.
    """
    return await _upload(request, account.name, files, service.settings.max_upload_bytes, mask=True)


# -- /internal/files ------------------------------------------------------------------------------


@internal.get("/files/{directory_type}")
async def internal_files(directory_type: str, account: Owner, files: Files) -> Response:
    """0.25.0: `["x.png [input]", ...]`, newest first; 400 for another directory type."""
    if directory_type not in comfy.KINDS:
        return JSONResponse({"error": "Invalid directory type"}, status_code=400)
    kind = comfy.comfy_type(directory_type)
    names = await list_folder(files, comfy.KINDS[kind], account.name)
    return JSONResponse([comfy.annotated(name, kind) for name in names])
