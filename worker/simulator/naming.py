"""ComfyUI's names for saved files: `<prefix>_00001_.png`, counting up per prefix."""

from __future__ import annotations

import os
import re
from pathlib import Path


def next_save_filename(folder: Path, prefix: str, extension: str) -> tuple[str, str]:
    """(subfolder, filename) for the next file with `filename_prefix` in `folder`.

    The prefix may carry a subfolder ("capture/ref" -> subfolder "capture"); the counter is one
    above the highest existing one for that prefix, as in ComfyUI. A prefix that would leave
    the folder is refused, as ComfyUI refuses it.
    """
    sub, _, stem = prefix.replace("\\", "/").rpartition("/")
    target = (folder / sub).resolve()
    if os.path.commonpath([target, folder.resolve()]) != str(folder.resolve()):
        raise ValueError("Saving image outside the output folder is not allowed.")
    target.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)_")
    counters = [int(m.group(1)) for p in target.iterdir() if (m := pattern.match(p.name))]
    counter = max(counters, default=0) + 1
    return sub, f"{stem}_{counter:05d}_.{extension}"
