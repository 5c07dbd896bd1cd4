"""Storing a participant's upload with ComfyUI's naming rules, safely.

ComfyUI's rules (`server.py`, `image_upload`): the name is the uploaded file's own; if a file of
that name exists with the same bytes, its name is answered and nothing is written; with other
bytes the upload becomes `x (1).png`, `x (2).png`, ... (each existing one compared in turn);
`overwrite` replaces the file instead.

Our guarantees, whatever the name or the timing:
* nothing is written outside `DATA/<kind>/<user>/`: the folder is reached with `openat` and
  O_NOFOLLOW one step at a time (`listing.open_folder`), and every later call works relative
  to that folder's descriptor, so no link planted or swapped in is ever followed;
* the content goes to a hidden temp file first, then into place with link(2) (fails if the
  name exists, so two uploads never overwrite each other) or, for `overwrite`, rename(2)
  (which replaces a link rather than writing through it); a reader never sees half a file and
  a failure leaves nothing behind;
* memory stays flat: the upload is hashed and copied in chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import BinaryIO

from queue_manager.comfy.view import numbered_names
from queue_manager.core.errors import UnsafePath
from queue_manager.core.ids import UserId
from queue_manager.core.paths import Kind
from queue_manager.storage.files import FileStore
from queue_manager.storage.listing import open_folder

Render = Callable[[BinaryIO, BinaryIO], None]
"""Writes what is stored for an upload (`upload`, `out`): the bytes themselves by default;
the original image with the mask's alpha for `/upload/mask`."""

CHUNK = 1024 * 1024
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def copy_bytes(upload: BinaryIO, out: BinaryIO) -> None:
    shutil.copyfileobj(upload, out, CHUNK)


async def store_upload(
    files: FileStore,
    kind: Kind,
    user: UserId,
    path: PurePosixPath,
    upload: BinaryIO,
    *,
    overwrite: bool,
    render: Render = copy_bytes,
) -> str:
    """Store `upload` at `path` (already checked by `comfy.view.upload_target`) in the user's
    folder of `kind`; returns the name it has there (`x.png`, `x (1).png`, ...).

    Same-bytes detection compares the uploaded bytes, as ComfyUI does (for a mask too).
    Raises UnsafePath (400) when a step of the folder or the name is not usable, and whatever
    `render` raises (nothing is left behind then).
    """
    return await asyncio.to_thread(
        _store, files, kind, user, path, upload, overwrite=overwrite, render=render
    )


def _store(
    files: FileStore,
    kind: Kind,
    user: UserId,
    path: PurePosixPath,
    upload: BinaryIO,
    *,
    overwrite: bool,
    render: Render,
) -> str:
    digest, size = _digest(upload)
    folder = open_folder(files, kind, user, path.parent, create=True)
    try:
        tmp = f".{uuid.uuid4().hex}.part"
        with os.fdopen(os.open(tmp, _NEW, 0o644, dir_fd=folder), "wb") as out:
            try:
                upload.seek(0)
                render(upload, out)
            except BaseException:
                os.unlink(tmp, dir_fd=folder)
                raise
        try:
            if overwrite:
                return _replace(folder, tmp, path.name)
            return _link_free_name(folder, tmp, path.name, digest, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
    finally:
        os.close(folder)


def _replace(folder: int, tmp: str, name: str) -> str:
    try:
        os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as exc:  # a folder of that name
        raise UnsafePath(name, "a folder has this name") from exc
    return name


def _link_free_name(folder: int, tmp: str, name: str, digest: bytes, size: int) -> str:
    for candidate in numbered_names(name):
        try:
            os.link(tmp, candidate, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            return candidate
        except FileExistsError:
            if _same_bytes(folder, candidate, digest, size):
                return candidate
    raise UnsafePath(name, "too many files with this name")


def _same_bytes(folder: int, name: str, digest: bytes, size: int) -> bool:
    """Is `name` a regular file holding exactly the upload? (A link or a folder is not.)"""
    try:
        fd = os.open(name, _READ, dir_fd=folder)
    except OSError:
        return False
    info = os.fstat(fd)  # before fdopen, which refuses a folder with IsADirectoryError
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as existing:
        return _digest(existing) == (digest, size)


def _digest(file: BinaryIO) -> tuple[bytes, int]:
    file.seek(0)
    hasher = hashlib.sha256()
    size = 0
    while chunk := file.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.digest(), size
