"""Reaching files in a participant's folders without ever leaving them: open, read, list.

Every path is walked one folder at a time from `DATA/<kind>/<user>/` with `openat` and
O_NOFOLLOW, so no symbolic link is followed anywhere below the data folder, whatever was
planted in it or swapped in meanwhile (a resolve-then-open check would leave that window open).
A link, a missing name, a folder where a file is expected, a FIFO or a device all read as "no
such file". What is served is the descriptor that was checked, never a path opened again.

The callers: `/view` and `/upload/mask` (`open_file`), `/internal/files` (`list_folder`),
LoadImage's list in `/object_info` (`input_images`) and prompt validation (`input_exists`).
Uploads use `open_folder(create=True)` to reach the folder they write in.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import PurePosixPath
from typing import BinaryIO

from queue_manager.comfy.view import is_image, loader_ref, newest_first
from queue_manager.core.errors import UnsafePath
from queue_manager.core.ids import UserId
from queue_manager.core.paths import MAX_DEPTH, Kind
from queue_manager.storage.files import FileStore

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO must not wait for a writer (it is refused right after).
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 256 * 1024
_TOP = PurePosixPath()
MAX_LISTED = 10_000  # a folder holding more is cut there (the page's combo could not show them)


def open_folder(
    files: FileStore,
    kind: Kind,
    user: UserId,
    rel_dir: PurePosixPath = _TOP,
    *,
    create: bool = False,
) -> int:
    """A descriptor of `DATA/<kind>/<user>/<rel_dir>`, every step a real folder.

    Reading: OSError (FileNotFoundError, ELOOP, ENOTDIR) when a step is missing or not a real
    folder. `create=True` makes the missing steps and answers UnsafePath (400) for a step that
    is a link or a file. The data folder itself is the operator's and may be a link.
    """
    if create:
        files.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(files.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in (kind, user, *rel_dir.parts):
            if part in ("", ".", "..") or "/" in part or "\0" in part:
                raise UnsafePath(str(rel_dir), "bad folder name")
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                step = os.open(part, _FOLDER, dir_fd=fd)
            except OSError as exc:
                if create and exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(str(rel_dir), "not a real folder") from exc
                raise
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(files: FileStore, kind: Kind, user: UserId, rel: PurePosixPath) -> BinaryIO:
    """The regular file at `rel` in the user's folder, opened for reading.

    FileNotFoundError for anything else: missing, a link (at any step), a folder, a FIFO.
    """
    try:
        folder = open_folder(files, kind, user, rel.parent)
        try:
            if rel.name in ("", ".", ".."):
                raise FileNotFoundError(str(rel))
            fd = os.open(rel.name, _FILE, dir_fd=folder)
        finally:
            os.close(folder)
    except (OSError, ValueError, UnsafePath) as exc:
        raise FileNotFoundError(str(rel)) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(str(rel))
    return os.fdopen(fd, "rb")


async def file_chunks(file: BinaryIO, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes `start` to `end` (exclusive) of an open file, then closes it. Memory stays flat."""
    fd = file.fileno()
    try:
        while start < end:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK, end - start), start)
            if not chunk:
                break  # the file shrank meanwhile: the client sees a short body
            start += len(chunk)
            yield chunk
    finally:
        file.close()


def _regular_files(fd: int) -> list[tuple[int, str]]:
    """`(mtime_ns, name)` of the visible regular files directly in an open folder."""
    found: list[tuple[int, str]] = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, our own `.part` temp files
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime_ns, entry.name))
                if len(found) >= MAX_LISTED:
                    break
    return found


def _scan(files: FileStore, kind: Kind, user: UserId) -> list[tuple[int, str]]:
    try:
        fd = open_folder(files, kind, user)
    except (OSError, UnsafePath):
        return []  # nothing uploaded or produced yet
    try:
        return _regular_files(fd)
    finally:
        os.close(fd)


async def list_folder(files: FileStore, kind: Kind, user: UserId) -> list[str]:
    """The files directly in the user's folder of `kind`, newest first (`/internal/files`).

    As ComfyUI: regular files only, not hidden ones, not those in subfolders; links are left
    out too.
    """
    return newest_first(await asyncio.to_thread(_scan, files, kind, user))


def _image_names(files: FileStore, user: UserId, include_subfolders: bool) -> list[str]:
    names = [name for _, name in _scan(files, "inputs", user)]
    if include_subfolders:
        names += _subfolder_files(files, user)
    return sorted(name for name in names if is_image(name.rsplit("/", 1)[-1]))


def _subfolder_files(files: FileStore, user: UserId) -> list[str]:
    """`sub/x.png` for the files in the input folder's (visible, real) subfolders."""
    found: list[str] = []
    pending = [_TOP]
    while pending and len(found) < MAX_LISTED:
        rel = pending.pop()
        try:
            fd = open_folder(files, "inputs", user, rel)
        except (OSError, UnsafePath):
            continue
        try:
            if rel.parts:
                found += [str(rel / name) for _, name in _regular_files(fd)]
            if len(rel.parts) < MAX_DEPTH:
                with os.scandir(fd) as entries:
                    pending += [
                        rel / e.name
                        for e in entries
                        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                    ]
        finally:
            os.close(fd)
    return found[:MAX_LISTED]


async def input_images(
    files: FileStore, user: UserId, *, include_subfolders: bool = False
) -> list[str]:
    """LoadImage's choices: the user's input images, sorted as ComfyUI sorts them.

    ComfyUI 0.25.0 lists only the files directly in the input folder (an upload to a subfolder
    is usable as `"sub/x.png"` but not listed: `get_object_info_loadimage_after_uploads`), keeps
    those whose extension is an image type and sorts the names as Python strings.
    `include_subfolders=True` adds `"sub/x.png"` names from the subfolders too.
    """
    return await asyncio.to_thread(_image_names, files, user, include_subfolders)


def input_exists(files: FileStore, user: UserId) -> Callable[[str], bool]:
    """For prompt validation: does a loader's file exist in this user's folders?

    Takes the widget value as ComfyUI does (`"x.png"`, `"sub/x.png"`, `"x.png [output]"` for
    the user's outputs, `[temp]`), and answers True only for a regular file inside the folder;
    an unsafe or odd name is simply False. It touches the disk (a few `openat` calls).
    """

    def exists(value: str) -> bool:
        ref = loader_ref(value) if isinstance(value, str) else None
        if ref is None:
            return False
        try:
            open_file(files, ref.kind, user, ref.path).close()
        except FileNotFoundError:
            return False
        return True

    return exists
