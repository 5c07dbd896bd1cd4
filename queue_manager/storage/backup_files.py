"""The data folder's files in a backup: one tar, streamed, and put back whole.

One uncompressed tar rather than files one by one: a single object to upload, checksum and
fetch (an S3 request per output would cost time and money on a room's thousands of images),
with names, sizes and times kept, and no CPU spent compressing media that is compressed
already.

Guarantees:
* only the backed-up parts are read (`core.backups.PARTS`, `TOP_FILES`); a symbolic link is
  never followed (every file is opened with O_NOFOLLOW; links, FIFOs and hidden `.part` files
  are left out), and a file replaced meanwhile is taken whole, as the version it opened;
* a restore unpacks into a staging folder first (tarfile's `data` filter: no absolute names, no
  `..`, no links out, no devices) and only then swaps each part into place by rename.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from queue_manager.core.backups import PARTS, TOP_FILES, BackupError
from queue_manager.storage.backup_targets import Sink
from queue_manager.storage.export_plan import Progress

_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
OnProgress = Callable[[Progress], None]


@dataclass(frozen=True)
class FileEntry:
    rel: PurePosixPath  # below DATA
    size: int


def plan_files(data_dir: Path) -> list[FileEntry]:
    """Every regular file of the backed-up parts, in name order."""
    found = [e for part in PARTS for e in _walk(data_dir, PurePosixPath(part))]
    for name in TOP_FILES:
        info = _lstat(data_dir / name)
        if info is not None and stat.S_ISREG(info.st_mode):
            found.append(FileEntry(PurePosixPath(name), info.st_size))
    return sorted(found, key=lambda e: e.rel.as_posix())


def _walk(data_dir: Path, top: PurePosixPath) -> Iterator[FileEntry]:
    root = data_dir / top
    info = _lstat(root)
    if info is None or not stat.S_ISDIR(info.st_mode):
        return
    for folder, dirs, files in os.walk(root):  # never follows links to folders
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(folder, name)
            info = _lstat(path)
            if not name.startswith(".") and info is not None and stat.S_ISREG(info.st_mode):
                yield FileEntry(PurePosixPath(path.relative_to(data_dir).as_posix()), info.st_size)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def write_tar(data_dir: Path, entries: list[FileEntry], out: Sink, on_progress: OnProgress) -> int:
    """Stream the tar of `entries` into `out`; returns how many files went in (one removed
    since the plan is skipped)."""
    total, done_bytes, done = sum(e.size for e in entries), 0, 0
    # A stream ("w|") only ever writes to its file; typeshed asks for a whole file object.
    stream = cast(IO[bytes], out)
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            try:
                fd = os.open(data_dir / entry.rel, _FILE)
            except OSError:
                continue  # gone since the plan (or a link put there meanwhile)
            with os.fdopen(fd, "rb") as source:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                member = tarfile.TarInfo(entry.rel.as_posix())
                member.size, member.mtime, member.mode = info.st_size, info.st_mtime, 0o644
                if entry.rel.as_posix() in TOP_FILES:
                    member.mode = 0o600  # secrets and passwords stay the owner's only
                tar.addfile(member, source)
            done, done_bytes = done + 1, done_bytes + info.st_size
            on_progress(Progress(done, len(entries), done_bytes, total))
    return done


def unpack(archive: Path, staging: Path) -> None:
    """The tar's files below `staging`; BackupError if it holds anything but backed-up parts."""
    allowed = set(PARTS) | set(TOP_FILES)
    with tarfile.open(archive, mode="r:") as tar:
        for member in tar:
            top = PurePosixPath(member.name).parts[:1]
            if not top or top[0] not in allowed or not (member.isfile() or member.isdir()):
                raise BackupError(f"{archive.name} holds {member.name!r}, not a workshop file")
            tar.extract(member, staging, filter="data")


def swap_in(data_dir: Path, staging: Path) -> None:
    """Make each backed-up part of DATA exactly the staged one: the old folder (or file) goes,
    the staged one is renamed into its place; a part the backup did not have is removed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in (*PARTS, *TOP_FILES):
        target, staged = data_dir / name, staging / name
        _remove(target)
        if _lstat(staged) is not None:
            os.replace(staged, target)


def _remove(path: Path) -> None:
    info = _lstat(path)
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)  # never follows a link inside
    else:
        path.unlink()


def remove_tree(path: Path) -> None:
    _remove(path)
