"""Path rules for files in a participant's folder, as pure functions.

Two directions, two policies:

* Names that come back from a worker (ComfyUI's `{filename, subfolder}` of an output) are made
  safe, never refused: an image must not be lost because a custom node named it oddly, and it
  must never land outside the participant's folder whatever the name says.
* Names a participant asks for (`/view`, uploads) are refused when they try to leave the folder,
  with ComfyUI's own distinctions (400 for a bad filename, 403 for an escaping subfolder).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import Literal

from queue_manager.core.errors import UnsafePath

# The three folders a user's files live in, under DATA/<kind>/<user>/.
Kind = Literal["outputs", "inputs", "temp"]

MAX_COMPONENT_BYTES = 200  # leaves room for collision suffixes and temp names under NAME_MAX
MAX_DEPTH = 8
# Windows device names: harmless on Linux, but these folders are also downloaded to laptops.
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10)}
_SEPARATORS = re.compile(r"[\\/]+")
_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')


def safe_output_path(subfolder: str, filename: str) -> PurePosixPath:
    """A relative path for a worker-reported output that cannot escape the user's folder."""
    parts = [c for c in (_clean(p) for p in _SEPARATORS.split(subfolder or "")) if c]
    name_parts = [c for c in (_clean(p) for p in _SEPARATORS.split(filename or "")) if c]
    if name_parts:
        parts += name_parts[:-1]
        name = name_parts[-1]
    else:
        name = "output"
    return PurePosixPath(*parts[:MAX_DEPTH], name)


def _clean(component: str) -> str | None:
    """One path component made safe, or None when nothing usable is left ('.', '..', '')."""
    text = unicodedata.normalize("NFC", component)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")  # NUL, controls
    text = _UNSAFE_CHARS.sub("_", text).strip().rstrip(". ")
    if not text or set(text) == {"."}:
        return None
    if text.startswith("."):
        text = "_" + text  # no hidden files (and never our own '.part' temp names)
    if text.split(".")[0].lower() in _RESERVED:
        text = "_" + text
    return _truncate(text)


def _truncate(name: str) -> str:
    if len(name.encode()) <= MAX_COMPONENT_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = name, ""
    budget = MAX_COMPONENT_BYTES - len(ext.encode()) - (1 if ext else 0)
    short = stem.encode()[:budget].decode(errors="ignore")
    return f"{short}.{ext}" if ext else short


def requested_path(subfolder: str, filename: str) -> PurePosixPath:
    """A participant's (subfolder, filename) as a relative path, or UnsafePath.

    ComfyUI answers 400 for a filename that is absolute or contains '..' and 403 for a subfolder
    that leaves the folder; we keep those codes and also refuse NUL, control characters,
    backslashes and hidden names outright.
    """
    if not filename:
        raise UnsafePath(filename, "no filename", status=404)
    if filename.startswith("/") or ".." in filename or _bad_chars(filename) or "/" in filename:
        raise UnsafePath(filename, "invalid filename", status=400)
    if filename.startswith("."):
        raise UnsafePath(filename, "invalid filename", status=400)
    sub = PurePosixPath(subfolder) if subfolder else PurePosixPath()
    if (
        _bad_chars(subfolder)
        or sub.is_absolute()
        or any(p in ("..", ".") or p.startswith(".") for p in sub.parts)
    ):
        raise UnsafePath(subfolder, "subfolder outside the folder", status=403)
    return sub / filename


def _bad_chars(text: str) -> bool:
    return "\\" in text or any(unicodedata.category(ch)[0] == "C" for ch in text)
