"""Zips of users' files, streamed: found without leaving their folders, read in chunks.

Guarantees, whatever was planted in the folders or changes while the zip streams:
* nothing outside `DATA/<top>/<user>/` is read: every folder below the data folder is opened
  relative to its parent with O_NOFOLLOW, and so is every file, so a symbolic link (to a file,
  to a folder, anywhere) is never followed, and no path is resolved again between check and
  use; hidden names (our own `.part` temp files among them), FIFOs and devices are left out;
* memory stays flat: a file is read in chunks as the client takes them; the zip is written as
  it goes (stored entries with data descriptors: nothing is read twice), ZIP64 where needed;
* a file changed meanwhile is taken whole or not at all, never half of two versions: each file
  is opened when its turn comes and read through that descriptor, which keeps the version it
  opened (our writers replace files by rename, never in place). A file removed since the plan
  is skipped; a new one is not in this zip. The stream never fails for either.

So the zip's length is not known before it is made (a Content-Length promised up front could
not be kept when a file goes away meanwhile): it is sent chunked.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from zipstream import ZIP_DEFLATED, ZIP_STORED, ZipStream

from queue_manager.core.ids import UserId, is_name
from queue_manager.storage.export_plan import (
    USER_TOPS,
    Entry,
    Found,
    Plan,
    Progress,
    Source,
    plan,
    room_sources,
    user_sources,
)

log = logging.getLogger(__name__)

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a planted FIFO must not wait for a writer (it is refused right after).
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1024 * 1024
MAX_DEPTH = 16  # as deep as a user's folders can be made through our routes

OnProgress = Callable[[Progress], None]


def plan_user(data_dir: Path, user: UserId) -> Plan:
    """A participant's zip: `outputs/`, `inputs/`, `workflows/`. Blocking: call in a thread."""
    return plan(scan(data_dir, user_sources(user)))


def plan_room(data_dir: Path) -> Plan:
    """The room's zip: the same under `<user>/` for every user with a folder. Blocking."""
    return plan(scan(data_dir, room_sources(users_on_disk(data_dir))))


def users_on_disk(data_dir: Path, tops: Iterable[str] = USER_TOPS) -> list[UserId]:
    """Every user with a real folder in `DATA/<top>` (`outputs`, `inputs`, `userdata`), account
    or not (an account removed earlier leaves its files, which are still the room's work)."""
    names: set[UserId] = set()
    for top in tops:
        fd = _open_dir(data_dir, (top,))
        if fd is None:
            continue
        try:
            names.update(UserId(n) for n, kind in _children(fd) if kind == "dir" and is_name(n))
        finally:
            os.close(fd)
    return sorted(names)


def scan(data_dir: Path, sources: Iterable[Source]) -> Iterator[Found]:
    """The regular files in each source folder (missing or linked folders: none)."""
    for source in sources:
        fd = _open_dir(data_dir, source.folder)
        if fd is None:
            continue
        try:
            for rel, size in _walk(fd, PurePosixPath(), 0):
                yield Found(source, rel, size)
        finally:
            os.close(fd)


def _walk(fd: int, rel: PurePosixPath, depth: int) -> Iterator[tuple[PurePosixPath, int]]:
    for name, kind in _children(fd):
        if kind == "file":
            info = _lstat(fd, name)
            if info is not None:
                yield rel / name, info.st_size
        elif depth < MAX_DEPTH:
            sub = _open_step(fd, name)
            if sub is None:
                continue  # replaced by a link meanwhile: never followed
            try:
                yield from _walk(sub, rel / name, depth + 1)
            finally:
                os.close(sub)


def _children(fd: int) -> list[tuple[str, str]]:
    """`(name, "file" | "dir")` of the visible regular files and real folders in `fd`."""
    found: list[tuple[str, str]] = []
    for name in sorted(os.listdir(fd)):
        if name.startswith(".") or not _printable(name):
            continue
        info = _lstat(fd, name)
        if info is None:
            continue
        if stat.S_ISREG(info.st_mode):
            found.append((name, "file"))
        elif stat.S_ISDIR(info.st_mode):
            found.append((name, "dir"))
    return found


def zip_chunks(
    data_dir: Path, chosen: Plan, on_progress: OnProgress | None = None
) -> Iterator[bytes]:
    """The zip of `chosen`, a chunk at a time (blocking reads: iterate it in a thread).

    `on_progress` is told after every chunk of file data and after every file."""
    stream = ZipStream(compress_type=ZIP_STORED)
    tally = _Tally(chosen, on_progress)
    for entry in chosen.entries:
        fd = _open_file(data_dir, entry.path)
        if fd is None:
            log.info("export: %s is gone since the listing; left out", entry.arcname)
        else:
            try:
                size = os.fstat(fd).st_size
                data = _read(fd, size, entry.arcname, tally) if size else b""
                kind = ZIP_DEFLATED if entry.deflate else ZIP_STORED
                stream.add(data, entry.arcname, size=size, compress_type=kind)
                yield from stream.all_files()
            finally:
                os.close(fd)
        tally.file_done(entry)
    yield from stream.footer()


class _Tally:
    """Files and bytes done so far, told to `on_progress`."""

    def __init__(self, chosen: Plan, on_progress: OnProgress | None) -> None:
        self._on_progress = on_progress
        self._files_total = chosen.files
        self._bytes_total = chosen.bytes
        self._files = 0
        self._bytes = 0  # of the files done
        self._current = 0  # of the file being read

    def read(self, n: int) -> None:
        self._current += n
        self._tell()

    def file_done(self, entry: Entry) -> None:
        self._files += 1
        self._bytes += entry.size  # as planned: the total is reached even if a file changed
        self._current = 0
        self._tell()

    def _tell(self) -> None:
        if self._on_progress is not None:
            done = min(self._bytes + self._current, self._bytes_total)
            self._on_progress(Progress(self._files, self._files_total, done, self._bytes_total))


def _read(fd: int, size: int, name: str, tally: _Tally) -> Iterator[bytes]:
    """`size` bytes of the open file, in chunks. A read error ends the file early: the zip
    records what was read (its CRC and size match the bytes sent), so it stays a valid zip."""
    offset = 0
    while offset < size:
        try:
            chunk = os.pread(fd, min(CHUNK, size - offset), offset)
        except OSError as exc:
            log.warning("export: reading %s failed after %d bytes: %s", name, offset, exc)
            return
        if not chunk:
            return  # shrank meanwhile (not by our writers, which never write in place)
        offset += len(chunk)
        tally.read(len(chunk))
        yield chunk


def _open_dir(data_dir: Path, parts: tuple[str, ...]) -> int | None:
    """`DATA/<parts>`, every step a real folder (the data folder itself may be a link: it is
    the operator's); None when missing or when a step is not a real folder."""
    try:
        fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    for part in parts:
        step = _open_step(fd, part)
        os.close(fd)
        if step is None:
            return None
        fd = step
    return fd


def _open_step(fd: int, part: str) -> int | None:
    if part in ("", ".", "..") or "/" in part or "\0" in part:
        return None
    try:
        return os.open(part, _DIR, dir_fd=fd)
    except OSError:
        return None


def _open_file(data_dir: Path, path: tuple[str, ...]) -> int | None:
    """The regular file at `DATA/<path>`, opened; None for anything else (gone, a link at any
    step, a folder, a FIFO)."""
    folder = _open_dir(data_dir, path[:-1])
    if folder is None:
        return None
    try:
        fd = os.open(path[-1], _FILE, dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None


def _printable(name: str) -> bool:
    """False for names that are not valid UTF-8 (a zip entry name must be text)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
