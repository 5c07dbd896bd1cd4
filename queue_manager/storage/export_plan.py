"""What goes into an export zip and under which names, as pure functions (no disk, no clock).

A participant's zip holds what they made, in three folders:

* `outputs/`: their ComfyUI outputs (`DATA/outputs/<user>/`);
* `inputs/`: their uploads (`DATA/inputs/<user>/`);
* `workflows/`: their saved workflows (`DATA/userdata/<user>/workflows/`).

Their ComfyUI settings (`comfy.settings.json`) are left out: they hold this workshop's page
preferences (and the defaults the workshop seeded), not work, and would only confuse a ComfyUI
at home. Scratch files (`DATA/temp/`) are left out too. The room's zip is the same once per
user, under `<user>/`.

`storage.export` finds the files (`Found`) and streams the zip of a `Plan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath

from queue_manager.core.ids import UserId
from queue_manager.core.sizes import human_bytes

# (folder in the zip, folder below DATA holding a folder per user, folder inside the user's)
AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("outputs", "outputs", ()),
    ("inputs", "inputs", ()),
    ("workflows", "userdata", ("workflows",)),
)
# The folders below DATA that hold a folder per user (what the room's export looks through).
USER_TOPS: tuple[str, ...] = ("outputs", "inputs", "userdata")
# Text compresses well and is small; media is stored as it is (already compressed, and big).
_DEFLATED_SUFFIXES = frozenset({".json", ".txt", ".csv", ".yaml", ".yml", ".svg", ".md"})


@dataclass(frozen=True)
class Source:
    """One folder of a user's files: where it lies below DATA, where it goes in the zip."""

    user: UserId
    folder: tuple[str, ...]  # below DATA, e.g. ("userdata", "user001", "workflows")
    arc: PurePosixPath  # e.g. "workflows", or "user001/workflows" in the room's zip


@dataclass(frozen=True)
class Found:
    """A regular file found in a source folder, `rel` below it."""

    source: Source
    rel: PurePosixPath
    size: int


@dataclass(frozen=True)
class Entry:
    """One file of the zip: where it is below DATA, its name in the zip, its size when found."""

    path: tuple[str, ...]
    arcname: str
    size: int
    deflate: bool


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


def user_sources(user: UserId, *, room: bool = False) -> tuple[Source, ...]:
    """The folders of one user's export; under `<user>/` in the room's zip."""
    base = PurePosixPath(user) if room else PurePosixPath()
    return tuple(Source(user, (top, user, *inside), base / name) for name, top, inside in AREAS)


def room_sources(users: Iterable[UserId]) -> tuple[Source, ...]:
    return tuple(s for user in sorted(set(users)) for s in user_sources(user, room=True))


def plan(found: Iterable[Found]) -> Plan:
    """The zip's entries, in name order (a stable zip for the same files)."""
    entries = [
        Entry(
            (*f.source.folder, *f.rel.parts),
            (f.source.arc / f.rel).as_posix(),
            f.size,
            _deflated(f.rel),
        )
        for f in found
    ]
    return Plan(tuple(sorted(entries, key=lambda e: e.arcname)))


def _deflated(rel: PurePosixPath) -> bool:
    return rel.suffix.lower() in _DEFLATED_SUFFIXES


def download_name(user: UserId, day: date) -> str:
    """`user001-workshop-2026-12-07.zip`."""
    return f"{user}-workshop-{day.isoformat()}.zip"


def room_download_name(day: date) -> str:
    """`workshop-room-2026-12-07.zip`."""
    return f"workshop-room-{day.isoformat()}.zip"


def archive_name(at: datetime) -> str:
    """`2026-12-07-143005.zip`: sorts by time, and a second archive a second later is another."""
    return at.strftime("%Y-%m-%d-%H%M%S") + ".zip"


def content_disposition(name: str) -> str:
    """An attachment header for a name we made (user names are lowercase ASCII: no quoting
    needed beyond the quotes)."""
    return f'attachment; filename="{name}"'


@dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


def progress_line(p: Progress) -> str:
    """`12/40 files, 1.2 GB of 3.4 GB (35%)`."""
    share = 100 if p.bytes_total == 0 else min(100, p.bytes_done * 100 // p.bytes_total)
    return (
        f"{p.files_done}/{p.files_total} files, "
        f"{human_bytes(p.bytes_done)} of {human_bytes(p.bytes_total)} ({share}%)"
    )
