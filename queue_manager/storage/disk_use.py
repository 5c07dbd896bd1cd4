"""How much of the disk the data folder's participant parts take, and how much is free."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from queue_manager.core.operator_status import PARTS, DiskUse


def disk_use(data_dir: Path) -> DiskUse:
    """Sizes of the participants' folders and the free space of the folder's filesystem.
    Blocking (it walks every file); links are not followed."""
    folder = str(data_dir.resolve())
    if not data_dir.is_dir():
        return DiskUse(folder, False, {}, 0, 0)
    usage = shutil.disk_usage(data_dir)
    parts = {name: _size(data_dir / name) for name in PARTS}
    return DiskUse(folder, True, parts, usage.free, usage.total)


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):  # links to folders are not followed
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while we walked
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
