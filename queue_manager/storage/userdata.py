"""A participant's ComfyUI user data on disk: `comfy.settings.json` and the `/userdata` files.

Layout: `DATA/userdata/<user>/comfy.settings.json`, `DATA/userdata/<user>/workflows/...`.

Guarantees, whatever the names or the timing:
* nothing outside `DATA/userdata/<user>/` is read, written, listed or removed: names arrive as
  checked relative paths (`userdata_paths.user_path`), and every folder below the data folder
  is opened relative to its parent with O_NOFOLLOW, files too: a link planted anywhere in the
  user's folder is never followed, and no path is resolved again between check and use;
* a write streams into a hidden temporary file which is then renamed into place: a reader sees
  the old file or the new one, never half of one, and a failed or refused write leaves nothing;
* a body larger than the limit is refused while it streams (StorageLimit); memory stays flat;
* settings are changed read-modify-write under one asyncio lock per user, and every rename or
  removal in the user's folder takes the same lock: no update is lost within this process;
* a corrupt settings file reads as `{}` (and is logged), so the page still loads.

All disk work runs in worker threads: the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import stat
import uuid
from collections.abc import AsyncIterable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import (
    MalformedBody,
    StorageLimit,
    UnsafePath,
    UserDataError,
    UserDataExists,
    UserDataInvalid,
    UserDataMissing,
)
from queue_manager.core.ids import UserId, is_name
from queue_manager.storage.userdata_paths import MAX_DEPTH, SETTINGS_FILE, Entry

log = logging.getLogger(__name__)
T = TypeVar("T")
Args = TypeVarTuple("Args")

_BASE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _BASE_FLAGS | os.O_NOFOLLOW
# O_NONBLOCK: opening a FIFO someone planted must not hang a thread; no effect on plain files.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 256 * 1024
FILE_NOT_FOUND = "File not found"
FILE_EXISTS = "File already exists"


@dataclass(frozen=True)
class OpenedFile:
    """A user file opened for reading; the caller closes `file`."""

    file: BinaryIO
    size: int
    mtime_ns: int


class UserDataStore:
    def __init__(self, data_dir: Path, max_bytes: int) -> None:
        self.data_dir = data_dir
        self.max_bytes = max_bytes
        self._locks: dict[UserId, asyncio.Lock] = {}

    def lock(self, user: UserId) -> asyncio.Lock:
        """Held for every change in `user`'s folder (settings read-modify-write, renames)."""
        return self._locks.setdefault(user, asyncio.Lock())

    # Settings ---------------------------------------------------------------------------------

    async def read_settings(self, user: UserId) -> dict[str, object]:
        return await asyncio.to_thread(self._read_settings, user)

    async def update_settings(self, user: UserId, changes: Mapping[str, object]) -> None:
        """Merge `changes` into the user's settings (ComfyUI's `dict.update`)."""
        async with self.lock(user):
            settings = await asyncio.to_thread(self._read_settings, user)
            settings.update(changes)
            data = json.dumps(settings, indent=4, ensure_ascii=False, allow_nan=False).encode()
            if len(data) > self.max_bytes:
                raise StorageLimit(self.max_bytes)
            await _shielded(self._replace, user, SETTINGS_FILE, data)

    def _read_settings(self, user: UserId) -> dict[str, object]:
        try:
            folder = self._open_folder(user, PurePosixPath(), create=False)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("settings of %s unreadable (folder): %s", user, exc)
            return {}
        try:
            raw = _read_small(folder, SETTINGS_FILE, self.max_bytes)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("settings of %s unreadable: %s", user, exc)
            return {}
        finally:
            os.close(folder)
        try:
            value = parse_json(raw, strict=True)
        except MalformedBody as exc:
            log.warning("settings of %s are corrupt, using {}: %s", user, exc)
            return {}
        if not isinstance(value, dict):
            log.warning("settings of %s are not a JSON object, using {}", user)
            return {}
        return value

    def _replace(self, user: UserId, name: str, data: bytes) -> None:
        """Write `data` to `name` in the user's folder through a temp file and a rename."""
        folder = self._folder_for_write(user, PurePosixPath())
        tmp = _temp_name()
        try:
            fd = os.open(tmp, _NEW_FLAGS, 0o644, dir_fd=folder)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        finally:
            _cleanup(folder, tmp)

    # Files ------------------------------------------------------------------------------------

    async def open_file(self, user: UserId, rel: PurePosixPath) -> OpenedFile:
        return await asyncio.to_thread(self._open_file, user, rel)

    async def write(
        self,
        user: UserId,
        rel: PurePosixPath,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool,
    ) -> Entry:
        """Store a stream at `rel`; UserDataExists when it exists and `overwrite` is false."""
        folder = await asyncio.to_thread(self._folder_for_write, user, rel.parent)
        tmp = _temp_name()
        try:
            if not overwrite and await asyncio.to_thread(_lstat, folder, rel.name) is not None:
                raise UserDataExists(FILE_EXISTS)  # early; checked again before the rename
            fd = await asyncio.to_thread(os.open, tmp, _NEW_FLAGS, 0o644, dir_fd=folder)
            out = os.fdopen(fd, "wb")
            try:
                size = 0
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise StorageLimit(self.max_bytes)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(_flush_and_sync, out)
            finally:
                await _shielded(out.close)
            async with self.lock(user):
                return await _shielded(_commit, folder, tmp, rel, overwrite)
        finally:
            await _shielded(_cleanup, folder, tmp)

    async def move(
        self, user: UserId, source: PurePosixPath, dest: PurePosixPath, *, overwrite: bool
    ) -> Entry:
        async with self.lock(user):
            return await _shielded(self._move, user, source, dest, overwrite)

    async def delete(self, user: UserId, rel: PurePosixPath) -> None:
        async with self.lock(user):
            await _shielded(self._delete, user, rel)

    async def list_files(self, user: UserId, rel: PurePosixPath, *, recurse: bool) -> list[Entry]:
        """The files under the folder `rel` (ComfyUI's `GET /userdata?dir=`)."""
        return await asyncio.to_thread(self._list_files, user, rel, recurse)

    async def tree(self, user: UserId, rel: PurePosixPath) -> list[Entry]:
        """Everything under the folder `rel` (ComfyUI's `GET /v2/userdata?path=`)."""
        return await asyncio.to_thread(self._tree, user, rel)

    def _open_file(self, user: UserId, rel: PurePosixPath) -> OpenedFile:
        with (
            self._folder(user, rel.parent, missing=FILE_NOT_FOUND) as folder,
            _translated(str(rel), FILE_NOT_FOUND),
        ):
            fd = os.open(rel.name, _READ_FLAGS, dir_fd=folder)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO...
            os.close(fd)
            raise UserDataMissing(FILE_NOT_FOUND)
        return OpenedFile(os.fdopen(fd, "rb"), info.st_size, info.st_mtime_ns)

    def _folder_for_write(self, user: UserId, rel_dir: PurePosixPath) -> int:
        with _translated(
            str(rel_dir), FILE_NOT_FOUND, UserDataInvalid(f"{rel_dir} is a file, not a folder")
        ):
            return self._open_folder(user, rel_dir, create=True)

    def _move(
        self, user: UserId, source: PurePosixPath, dest: PurePosixPath, overwrite: bool
    ) -> Entry:
        with self._folder(user, source.parent, missing=FILE_NOT_FOUND) as src_dir:
            info = _lstat(src_dir, source.name)
            if info is None:
                raise UserDataMissing(FILE_NOT_FOUND)
            if stat.S_ISLNK(info.st_mode):
                raise UnsafePath(str(source), "links are never followed", status=403)
            if not stat.S_ISREG(info.st_mode):
                raise UserDataInvalid("Only files can be moved")
            dst_dir = self._folder_for_write(user, dest.parent)
            try:
                _check_target(dst_dir, dest.name, overwrite)
                os.rename(source.name, dest.name, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
                return _entry(dst_dir, dest)
            finally:
                os.close(dst_dir)

    def _delete(self, user: UserId, rel: PurePosixPath) -> None:
        with self._folder(user, rel.parent, missing=FILE_NOT_FOUND) as folder:
            info = _lstat(folder, rel.name)
            if info is None:
                raise UserDataMissing(FILE_NOT_FOUND)
            if stat.S_ISDIR(info.st_mode):
                raise UserDataInvalid("Folders cannot be deleted")
            os.unlink(rel.name, dir_fd=folder)  # a link is removed, never followed

    def _list_files(self, user: UserId, rel: PurePosixPath, recurse: bool) -> list[Entry]:
        missing = "Directory not found"
        with self._folder(user, rel, missing=missing, not_a_folder=UserDataMissing(missing)) as fd:
            return [e for e in _walk(fd, rel, recurse=recurse) if not e.is_dir]

    def _tree(self, user: UserId, rel: PurePosixPath) -> list[Entry]:
        not_a_folder = UserDataInvalid("Requested path is not a directory")
        try:
            with self._folder(
                user, rel, missing="Requested path not found", not_a_folder=not_a_folder
            ) as fd:
                return list(_walk(fd, rel, recurse=True))
        except UserDataMissing:
            if rel.parts:
                raise
            return []  # a new user's folder does not exist yet: ComfyUI answers [] for it

    @contextlib.contextmanager
    def _folder(
        self,
        user: UserId,
        rel_dir: PurePosixPath,
        *,
        missing: str,
        not_a_folder: UserDataError | None = None,
    ) -> Iterator[int]:
        """The existing folder `rel_dir` of `user`, open (closed on exit)."""
        with _translated(str(rel_dir), missing, not_a_folder):
            fd = self._open_folder(user, rel_dir, create=False)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_folder(self, user: UserId, rel_dir: PurePosixPath, *, create: bool) -> int:
        """An fd of `DATA/userdata/<user>/<rel_dir>`, every step below DATA a real folder."""
        if not is_name(user):
            raise UnsafePath(user, "not a user name", status=403)
        if create:
            self.data_dir.mkdir(parents=True, exist_ok=True)  # the operator's; may be a link
        base = os.open(self.data_dir, _BASE_FLAGS)
        try:
            return _descend(base, ("userdata", user, *rel_dir.parts), create=create)
        finally:
            os.close(base)


def _descend(base: int, parts: tuple[str, ...], *, create: bool) -> int:
    fd = os.dup(base)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            step = _open_step(fd, part)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_step(fd: int, part: str) -> int:
    """The folder `part` inside `fd`; ELOOP for a link (Linux reports ENOTDIR for a link when
    O_DIRECTORY is given, as for a plain file: tell them apart), ENOTDIR for anything else."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except NotADirectoryError:
        info = _lstat(fd, part)
        if info is not None and stat.S_ISLNK(info.st_mode):
            raise OSError(errno.ELOOP, "a link", part) from None
        raise


@contextlib.contextmanager
def _translated(
    name: str, missing: str, not_a_folder: UserDataError | None = None
) -> Iterator[None]:
    """OS errors met inside the user's folder, as the domain errors the API answers with."""
    try:
        yield
    except FileNotFoundError as exc:
        raise UserDataMissing(missing) from exc
    except NotADirectoryError as exc:
        raise (not_a_folder or UserDataMissing(missing)) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(name, "links are never followed", status=403) from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise UnsafePath(name, "the name is too long") from exc
        raise


def _walk(fd: int, rel: PurePosixPath, *, recurse: bool, depth: int = 0) -> Iterator[Entry]:
    """Files and folders under the open folder `fd` (known as `rel`), sorted by name; hidden
    names, links and anything else that is not a plain file or folder are skipped."""
    for name in sorted(os.listdir(fd)):
        if name.startswith(".") or not _printable(name):
            continue
        path = rel / name
        info = _lstat(fd, name)
        if info is None:
            continue  # removed meanwhile
        if stat.S_ISREG(info.st_mode):
            yield Entry(path, False, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        elif stat.S_ISDIR(info.st_mode):
            yield Entry(path, True, 0, info.st_mtime_ns, info.st_ctime_ns)
            if recurse and depth < MAX_DEPTH:
                try:
                    sub = _open_step(fd, name)
                except OSError:
                    continue  # replaced meanwhile (by a link, never followed)
                try:
                    yield from _walk(sub, path, recurse=True, depth=depth + 1)
                finally:
                    os.close(sub)


def _printable(name: str) -> bool:
    """False for names that are not valid UTF-8 (they could not be sent as JSON)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _commit(folder: int, tmp: str, rel: PurePosixPath, overwrite: bool) -> Entry:
    _check_target(folder, rel.name, overwrite)
    os.rename(tmp, rel.name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces a link, never
    return _entry(folder, rel)  # writes through it


def _check_target(folder: int, name: str, overwrite: bool) -> None:
    info = _lstat(folder, name)
    if info is None:
        return
    if not overwrite:
        raise UserDataExists(FILE_EXISTS)
    if stat.S_ISDIR(info.st_mode):
        raise UserDataInvalid("A folder already has this name")


def _entry(folder: int, rel: PurePosixPath) -> Entry:
    info = os.stat(rel.name, dir_fd=folder, follow_symlinks=False)
    return Entry(rel, False, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _lstat(folder: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _read_small(folder: int, name: str, limit: int) -> bytes:
    """A plain file's bytes; OSError for anything else (a link: ELOOP) or above `limit`."""
    fd = os.open(name, _READ_FLAGS, dir_fd=folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a plain file", name)
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "larger than allowed", name)
    return data


def _flush_and_sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _cleanup(folder: int, tmp: str) -> None:
    """Remove the temp file if it is still there (a failed or refused write) and close."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
    finally:
        os.close(folder)


def _temp_name() -> str:
    return f".{uuid.uuid4().hex}.part"  # hidden: never listed, never addressable by a request


async def _shielded(func: Callable[[*Args], T], *args: *Args) -> T:
    """Run `func` in a thread to the end even if the request is cancelled meanwhile: a rename
    or clean-up must not be abandoned half-way, nor an fd closed while a thread uses it."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(func, *args)
    return result
