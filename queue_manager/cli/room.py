"""`comfy-workshop room export|archive|reset`: the room's work as one zip, and a clean slate for
the next workshop.

* `room export [--out FILE]`: one zip, a folder per user, each as that participant's own
  export (`outputs/`, `inputs/`, `workflows/`). Reads the data folder only: the workshop need
  not be running.
* `room archive [--out DIR]`: the same zip, kept as DIR/<date-time>.zip (default DATA/archives).
* `room reset [--keep PARTS] [--force] [--no-archive --yes]`: archives the room first, then
  clears what is not kept (`core.room_reset`). Refused while jobs are queued or running, unless
  `--force` (which cancels them). Deleting without an archive takes `--no-archive --yes`.

Progress goes to stderr; a zip is written under a hidden `.part` name and renamed once whole,
so an interruption (Ctrl-C) leaves no half zip behind, and nothing is deleted before the
archive is whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from queue_manager.cli.progress import ProgressPrinter
from queue_manager.cli.roster import read_credentials, write_credentials
from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.accounts import Role
from queue_manager.core.ids import UserId
from queue_manager.core.room_reset import BadKeep, Part, cleared, folders, parse_keep, summary
from queue_manager.core.sizes import human_bytes
from queue_manager.service.room_reset import RoomReset
from queue_manager.settings import Settings
from queue_manager.storage.clearing import clear_user_folders
from queue_manager.storage.export import plan_room, users_on_disk, zip_chunks
from queue_manager.storage.export_plan import (
    Plan,
    archive_name,
    room_download_name,
)
from queue_manager.store.connection import connect

# Who the log lines name for a change made from the command line.
OPERATOR = UserId("operator")
INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C


class RoomError(Exception):
    """Said as one line on stderr, with what to do next; the command exits 1."""


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    room = sub.add_parser(
        "room", help="export the room's work as one zip, archive it, or reset the room"
    )
    actions = room.add_subparsers(dest="room_action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write the room's work as one zip")
    export.add_argument(
        "--out", type=Path, metavar="FILE", help="default: ./workshop-room-<date>.zip"
    )
    archive = actions.add_parser("archive", help="keep the room's zip in DIR/<date-time>.zip")
    archive.add_argument("--out", type=Path, metavar="DIR", help="default: DATA/archives")
    reset = actions.add_parser(
        "reset", help="archive the room, then clear it for the next workshop"
    )
    reset.add_argument(
        "--keep",
        metavar="PARTS",
        help="what to keep, comma-separated, of outputs, inputs, workflows, history, accounts "
        "(default: accounts); none keeps nothing",
    )
    reset.add_argument("--force", action="store_true", help="cancel queued and running jobs")
    reset.add_argument("--no-archive", action="store_true", help="delete without an archive")
    reset.add_argument("--yes", action="store_true", help="confirm --no-archive")
    for cmd in (export, archive, reset):
        add_data_option(cmd)


def run_room_command(settings: Settings, args: argparse.Namespace) -> int:
    action = args.room_action
    try:
        if action == "export":
            _export(settings.data_dir, args.out)
        elif action == "archive":
            _archive(settings.data_dir, args.out)
        else:
            _reset(settings, args)
    except (RoomError, BadKeep) as exc:
        print(f"comfy-workshop room {action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"comfy-workshop room {action}: interrupted", file=sys.stderr)
        return INTERRUPTED
    return 0


# -- export and archive ---------------------------------------------------------------------


def _export(data_dir: Path, out: Path | None) -> None:
    target = out or Path(room_download_name(date.today()))
    if target.exists():
        raise RoomError(f"{target} exists: remove it or choose another --out FILE")
    _write_room(data_dir, target)


def _archive(data_dir: Path, out: Path | None) -> Path:
    folder = out or data_dir / "archives"
    _check_data(data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RoomError(f"cannot make the folder {folder}: {exc.strerror}") from exc
    target = _free_name(folder, archive_name(datetime.now()))
    _write_room(data_dir, target)
    return target


def _free_name(folder: Path, name: str) -> Path:
    stem = name.removesuffix(".zip")
    candidate, n = folder / name, 1
    while candidate.exists():
        candidate, n = folder / f"{stem}-{n}.zip", n + 1
    return candidate


def _check_data(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise RoomError(f"no data folder at {data_dir}: give --data DIR (or set CW_DATA_DIR)")


def _write_room(data_dir: Path, target: Path) -> None:
    """The room's zip at `target`, written whole or not at all."""
    _check_data(data_dir)
    chosen = plan_room(data_dir)
    users = len(users_on_disk(data_dir))
    print(
        f"writing {users} users' work ({chosen.files} files, {human_bytes(chosen.bytes)}) "
        f"into {target}",
        file=sys.stderr,
    )
    part = target.with_name(f".{target.name}.part")
    try:
        _write_zip(data_dir, chosen, part, ProgressPrinter(sys.stderr))
        os.replace(part, target)
    except OSError as exc:
        raise RoomError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        part.unlink(missing_ok=True)  # interrupted or failed: no half zip left behind
    print(f"wrote {target} ({users} users, {chosen.files} files, {human_bytes(chosen.bytes)})")


def _write_zip(data_dir: Path, chosen: Plan, part: Path, progress: ProgressPrinter) -> None:
    with part.open("wb") as out:
        for chunk in zip_chunks(data_dir, chosen, progress.update):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    progress.finish()


# -- reset ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Room:
    queued: int
    running: int
    instructors: set[UserId]


def _reset(settings: Settings, args: argparse.Namespace) -> None:
    keep = _keep(args)
    _check_data(settings.data_dir)
    settings = workshop_settings(settings)
    room = asyncio.run(_look(settings))
    if room.queued + room.running:
        if not args.force:
            raise RoomError(
                f"jobs are in the room ({room.queued} queued, {room.running} running): wait "
                "for them (pause the queue in the dashboard), or add --force to cancel them"
            )
        asyncio.run(_cancel(settings))  # before the archive: no output lands after it
    print(f"room reset: {summary(keep)}", file=sys.stderr)
    if not args.no_archive:
        _archive_first(settings.data_dir)
    try:
        _clear(settings, keep, room)
    except KeyboardInterrupt:
        print("interrupted while clearing: run `room reset` again to finish", file=sys.stderr)
        raise


def _keep(args: argparse.Namespace) -> frozenset[Part]:
    """The parts kept, once the options are known to make sense together."""
    keep = parse_keep(args.keep)
    if not cleared(keep):
        raise RoomError("--keep names every part: there is nothing to reset")
    if args.no_archive and not args.yes:
        raise RoomError("--no-archive deletes the room's work without a copy: add --yes to do so")
    return keep


def _archive_first(data_dir: Path) -> None:
    try:
        archived = _archive(data_dir, None)
    except KeyboardInterrupt:
        print("interrupted while archiving: nothing was deleted", file=sys.stderr)
        raise
    print(f"everything is in {archived}", file=sys.stderr)


async def _look(settings: Settings) -> _Room:
    redis = connect(str(settings.redis_url), retries=1)
    try:
        reset = RoomReset(settings, redis)
        queued, running = await reset.live_jobs()
        return _Room(queued, running, await reset.instructors())
    finally:
        await redis.aclose()


async def _cancel(settings: Settings) -> None:
    redis = connect(str(settings.redis_url), retries=1)
    try:
        print(f"cancelled {await RoomReset(settings, redis).cancel_live_jobs(OPERATOR)} jobs")
    finally:
        await redis.aclose()


def _clear(settings: Settings, keep: frozenset[Part], room: _Room) -> None:
    asyncio.run(_clear_redis(settings, keep))
    tops = folders(keep)
    participants = [u for u in users_on_disk(settings.data_dir, tops) if u not in room.instructors]
    removed = clear_user_folders(settings.data_dir, tops, participants)
    if tops:
        print(f"removed {removed} folders of {len(participants)} participants ({', '.join(tops)})")
    if Part.ACCOUNTS not in keep:
        _forget_passwords(settings.data_dir / "credentials.csv")


async def _clear_redis(settings: Settings, keep: frozenset[Part]) -> None:
    redis = connect(str(settings.redis_url), retries=1)
    try:
        reset = RoomReset(settings, redis)
        if Part.HISTORY not in keep:
            print(f"forgot {await reset.clear_history(OPERATOR)} finished jobs")
        if Part.WORKFLOWS not in keep or Part.ACCOUNTS not in keep:
            await reset.forget_first_visits(OPERATOR)
            print("the instructor's first workflow opens again on each participant's next visit")
        if Part.ACCOUNTS in keep:
            ended = await reset.sign_out_participants(OPERATOR)
            print(f"kept the accounts (same passwords); signed out {len(ended)} participants")
        else:
            gone = await reset.remove_participants(OPERATOR)
            print(
                f"removed {len(gone)} participant accounts: `comfy-workshop up` makes new ones "
                "with new passwords (or `comfy-workshop users add NAME`)"
            )
    finally:
        await redis.aclose()


def _forget_passwords(path: Path) -> None:
    """Take the participants out of `up`'s credentials file, so that the next `up` makes new
    passwords rather than bringing the old ones back."""
    rows = read_credentials(path)
    if rows:
        kept = {n: row for n, row in rows.items() if row[0] != Role.PARTICIPANT.value}
        write_credentials(path, kept)
