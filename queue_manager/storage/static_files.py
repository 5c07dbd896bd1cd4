"""Serving files out of a fixed folder (the frontend package, our extension, the dashboard)."""

from __future__ import annotations

from pathlib import Path


def file_inside(root: Path, rel: str) -> Path | None:
    """`root/rel` if it is a regular file inside `root` (no `..`, no link out), else None.
    Blocking (it touches the disk): call it in a thread."""
    if not rel or "\x00" in rel or "\\" in rel:
        return None
    try:
        base = root.resolve(strict=True)
        target = (base / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return target if target.is_relative_to(base) and target.is_file() else None
