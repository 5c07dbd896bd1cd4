"""Writing into a participant's folder: streamed, to a temporary name, then linked into place.

Guarantees, whatever the name or the timing:
* nothing is written outside `DATA/<kind>/<user>/` (every folder on the way is created or
  checked to be a real folder, never a link, and files are opened with O_NOFOLLOW);
* no existing file is overwritten: the final name is created with link(2), which fails if the
  name exists, and a collision picks `stem_1.ext`, `stem_2.ext`, ...;
* a reader never sees a half-written file, and a failed copy leaves nothing behind;
* memory stays flat: chunks go to disk as they arrive (a file under `WHOLE_BYTES`, most
  images, is held whole and written in one step: one thread hop instead of one per chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import aiofiles
import aiofiles.os

from queue_manager.core.errors import StorageLimit, UnsafePath
from queue_manager.core.ids import UserId
from queue_manager.core.paths import Kind

MAX_COLLISIONS = 10_000
WHOLE_BYTES = 4 << 20


@dataclass(frozen=True)
class StoredFile:
    path: PurePosixPath  # relative to the user's folder of its kind
    size: int


class FileStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir

    def user_dir(self, kind: Kind, user: UserId) -> Path:
        return self.root / kind / user

    async def write_stream(
        self,
        kind: Kind,
        user: UserId,
        rel: PurePosixPath,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
    ) -> StoredFile:
        """Store a stream at `rel` (already made safe) or at a free name next to it."""
        stream = aiter(chunks)
        head, more = await _read_head(stream, min(WHOLE_BYTES, max_bytes))
        if len(head) > max_bytes:
            raise StorageLimit(max_bytes)
        if not more:
            name = await asyncio.to_thread(self._write_whole, kind, user, rel, head)
            return StoredFile(rel.parent / name, len(head))
        folder = await asyncio.to_thread(self._ensure_folder, kind, user, rel.parent)
        tmp = _temporary(folder)
        fd = await asyncio.to_thread(_create, tmp)
        size = len(head)
        try:
            async with aiofiles.open(fd, "wb") as out:
                await out.write(head)
                async for chunk in stream:
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageLimit(max_bytes)
                    await out.write(chunk)
            name = await asyncio.to_thread(_link_free_name, tmp, folder, rel.name)
        finally:
            await aiofiles.os.remove(tmp)
        return StoredFile(rel.parent / name, size)

    def _write_whole(self, kind: Kind, user: UserId, rel: PurePosixPath, data: bytes) -> str:
        folder = self._ensure_folder(kind, user, rel.parent)
        tmp = _temporary(folder)
        try:
            with open(_create(tmp), "wb") as out:
                out.write(data)
            return _link_free_name(tmp, folder, rel.name)
        finally:
            tmp.unlink()

    async def discard(self, kind: Kind, user: UserId, rel: PurePosixPath) -> None:
        """Remove a file this store wrote (an output whose job attempt was lost meanwhile):
        only a regular file inside the user's folder, reached through real folders; nothing
        is created on the way, and a name that is not there is no error."""
        await asyncio.to_thread(self._discard, kind, user, rel)

    def _discard(self, kind: Kind, user: UserId, rel: PurePosixPath) -> None:
        folder = self._folder(kind, user, rel.parent, create=False)
        if folder is None:
            return
        if rel.name in ("", ".", ".."):
            raise UnsafePath(str(rel), "bad file name")
        path = folder / rel.name
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)  # never follows a link: a link put there is left alone

    def _ensure_folder(self, kind: Kind, user: UserId, rel_dir: PurePosixPath) -> Path:
        """Create the folders down to `rel_dir`, refusing any step that is not a real folder."""
        self.root.mkdir(parents=True, exist_ok=True)  # the data folder itself is the operator's
        folder = self._folder(kind, user, rel_dir, create=True)
        if folder is None:  # removed again between its creation and its check
            raise FileNotFoundError(str(rel_dir))
        return folder

    def _folder(
        self, kind: Kind, user: UserId, rel_dir: PurePosixPath, *, create: bool
    ) -> Path | None:
        """`DATA/<kind>/<user>/<rel_dir>` walked one step at a time, each step a real folder
        (never a link) or UnsafePath; missing steps are created, or the answer is None."""
        folder = self.root
        for part in (kind, user, *rel_dir.parts):
            if part in ("", ".", "..") or "/" in part:
                raise UnsafePath(str(rel_dir), "bad folder name")
            folder = folder / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder, 0o755)
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(mode):
                raise UnsafePath(str(folder.relative_to(self.root)), "not a real folder")
        return folder


async def _read_head(stream: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """The stream's first bytes, up to just over `limit`; True: it has more (or is longer
    than `limit`), so it is written as it comes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in stream:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts), True
    return b"".join(parts), False


def _temporary(folder: Path) -> Path:
    """A name no reader takes for a file: where a file is written before it is linked."""
    return folder / f".{uuid.uuid4().hex}.part"


def _create(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)


def _link_free_name(tmp: Path, folder: Path, name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    for i in range(MAX_COLLISIONS):
        candidate = name if i == 0 else f"{stem}_{i}{'.' + ext if ext else ''}"
        try:
            os.link(tmp, folder / candidate, follow_symlinks=False)
            return candidate
        except FileExistsError:
            continue
    raise UnsafePath(name, "too many files with this name")
