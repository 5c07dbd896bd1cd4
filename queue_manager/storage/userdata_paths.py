"""Rules for names in a participant's user-data folder (workflows, settings), as pure functions.

ComfyUI's page names its files with paths relative to the user's folder (`workflows/a.json`),
URL-encoded into one path segment (`workflows%2Fa.json`). A name is decoded exactly once (by
the server, before it gets here) and then either accepted as a plain relative path or refused.
Refused, whatever the spelling: absolute paths, `.` and `..` parts, backslashes, NUL and control
characters, hidden names (ComfyUI never lists them, and our own temp files are hidden), and
names still holding `%XX` after decoding (ComfyUI decodes those a second time; refusing them
means no spelling can mean two different files, e.g. `%252e%252e%252f`).

The listing shapes of ComfyUI's `GET /userdata` and `GET /v2/userdata` are built here too.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

from queue_manager.core.errors import UnsafePath

MAX_COMPONENT_BYTES = 200  # under NAME_MAX (255) with room for the temp-name prefix
MAX_DEPTH = 16
SETTINGS_FILE = "comfy.settings.json"
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
MOVE = "move"


def user_path(text: str, *, allow_root: bool = False) -> PurePosixPath:
    """`text` as a safe relative path inside the user's folder, or UnsafePath.

    403 for a path that tries to leave the folder (as ComfyUI), 400 for a bad name. A trailing
    or doubled `/` is tolerated (`dir=subgraphs/` is what some frontends send).
    """
    if _ENCODED.search(text):
        raise UnsafePath(text, "percent-encoded characters are not allowed in a name")
    if "\\" in text or any(_is_control(ch) for ch in text):
        raise UnsafePath(text, "control characters and backslashes are not allowed in a name")
    if text.startswith("/"):
        raise UnsafePath(text, "absolute paths are not allowed", status=403)
    parts = [p for p in text.split("/") if p]
    if not parts:
        if allow_root:
            return PurePosixPath()
        raise UnsafePath(text, "no file name given")
    for part in parts:
        if part in (".", ".."):
            raise UnsafePath(text, "the path leaves your folder", status=403)
        if part.startswith("."):
            raise UnsafePath(text, "hidden names (starting with '.') are not allowed")
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise UnsafePath(text, f"a name is longer than {MAX_COMPONENT_BYTES} bytes")
    if len(parts) > MAX_DEPTH:
        raise UnsafePath(text, f"more than {MAX_DEPTH} folders deep")
    return PurePosixPath(*parts)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029"


def raw_tail(raw_path: bytes | None, path: str, tail: str) -> str:
    """The still-encoded form of `tail`, the decoded end of the request path `path`.

    Routing sees `%2F` already decoded to `/`; only the raw path tells `a%2Fmove%2Fb` (a file)
    from `a/move/b` (a move). Without a raw path, or when it does not decode to `tail`, the
    decoded `tail` stands in for it.
    """
    if raw_path is None or not path.endswith(tail):
        return tail
    prefix_slashes = path[: len(path) - len(tail)].count("/")
    pieces = raw_path.decode("utf-8", "surrogateescape").split("/", prefix_slashes)
    if len(pieces) <= prefix_slashes:
        return tail
    candidate = pieces[-1]
    return candidate if unquote(candidate) == tail else tail


def split_move(raw: str) -> tuple[str, str | None]:
    """Decoded (source, destination) of `POST /userdata/{raw}`; destination None when `raw`
    names one file. ComfyUI's move route is `{file}/move/{dest}`: exactly one literal (not
    encoded) `move` segment between two non-empty sides."""
    segments = raw.split("/")
    marks = [i for i, s in enumerate(segments) if s == MOVE and 0 < i < len(segments) - 1]
    if not marks:
        return unquote(raw), None
    if len(marks) > 1:
        raise UnsafePath(unquote(raw), "ambiguous move: encode '/' in the names as %2F")
    i = marks[0]
    return unquote("/".join(segments[:i])), unquote("/".join(segments[i + 1 :]))


@dataclass(frozen=True)
class Entry:
    """One thing in a user's folder, as found on disk."""

    path: PurePosixPath  # relative to the user's folder
    is_dir: bool
    size: int
    mtime_ns: int
    ctime_ns: int


def file_info(entry: Entry, base: PurePosixPath) -> dict[str, object]:
    """ComfyUI's `{path, size, modified, created}` (times in integer milliseconds), `path`
    relative to `base`."""
    return {
        "path": entry.path.relative_to(base).as_posix(),
        "size": entry.size,
        "modified": entry.mtime_ns // 1_000_000,
        "created": entry.ctime_ns // 1_000_000,
    }


def listing_item(
    entry: Entry, base: PurePosixPath, *, full_info: bool, split: bool
) -> dict[str, object] | str | list[str]:
    """One item of `GET /userdata?dir=`: a relative path, `[path, *parts]`, or file info."""
    if full_info:
        return file_info(entry, base)
    rel = entry.path.relative_to(base).as_posix()
    return [rel, *rel.split("/")] if split else rel


def v2_item(entry: Entry) -> dict[str, object]:
    """One item of `GET /v2/userdata`: `{name, path, type}` plus `size` and `modified` (float
    seconds) for files."""
    item: dict[str, object] = {
        "name": entry.path.name,
        "path": entry.path.as_posix(),
        "type": "directory" if entry.is_dir else "file",
    }
    if not entry.is_dir:
        item["size"] = entry.size
        item["modified"] = entry.mtime_ns / 1e9
    return item


def v2_listing(entries: list[Entry]) -> list[dict[str, object]]:
    """ComfyUI's order: folders first, then by name, case-insensitively."""
    ordered = sorted(entries, key=lambda e: (not e.is_dir, e.path.name.lower(), e.path.as_posix()))
    return [v2_item(e) for e in ordered]


def etag(size: int, mtime_ns: int) -> str:
    """aiohttp's strong ETag for a file (what ComfyUI's `FileResponse` sends)."""
    return f'"{mtime_ns:x}-{size:x}"'
