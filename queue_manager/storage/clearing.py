"""Removing users' folders for the next workshop (`room reset`), never anything outside them.

`DATA/<top>/<user>` is removed whole; a link in its place is removed as a link (never
followed), and so is every link inside (Python's `shutil.rmtree` works on descriptors: it
neither follows nor can be tricked into following one swapped in meanwhile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from queue_manager.core.ids import UserId, is_name

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clear_user_folders(data_dir: Path, tops: Iterable[str], users: Iterable[UserId]) -> int:
    """Remove `DATA/<top>/<user>` for each top and user; returns how many were there.
    Blocking: it may take a while for many files."""
    chosen = [u for u in users if is_name(u)]
    removed = 0
    for top in tops:
        try:
            fd = os.open(data_dir / top, _DIR)
        except OSError:
            continue  # no such folder (or a link where it should be: not ours to touch)
        try:
            removed += sum(_remove(fd, user) for user in chosen)
        finally:
            os.close(fd)
    return removed


def _remove(folder: int, name: str) -> bool:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=folder)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
    return True
