"""`comfy-workshop backup [--to DIR|s3://BUCKET/PREFIX] [--keep N] [--every PERIOD] [--list]`:
the running workshop's Redis state and files, as one backup (`core/backups.py` says what it
holds), kept in a folder (default DATA/backups) or an S3-compatible bucket.

The Redis state is read first, in one atomic script, then the files: a job finishing meanwhile
can only add an output the state does not name yet, never name one the backup lacks.
`manifest.json` is written last, so an interrupted backup (Ctrl-C, a crash, a full disk) is
never taken for a whole one; it is removed at once when we can, else by a later backup's
retention after a day. `--every 6h` runs forever (a compose service, a systemd unit): one
backup per period, one line each; a failed one is said and tried again next period.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

import redis
from redis.exceptions import RedisError

from queue_manager.cli.progress import ProgressPrinter
from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.backups import (
    ARCHIVE,
    MANIFEST,
    SNAPSHOT,
    BackupError,
    Manifest,
    backup_id,
    encode_records,
    last_record,
    parse_duration,
    sort_key,
    to_delete,
)
from queue_manager.core.sizes import human_bytes
from queue_manager.settings import Settings
from queue_manager.storage.backup_files import plan_files, write_tar
from queue_manager.storage.backup_targets import Counted, Target, open_target
from queue_manager.storage.export_plan import Progress
from queue_manager.store.snapshot import open_client, read_snapshot, record_last

INTERRUPTED = 130
DEFAULT_KEEP = 14


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backup",
        help="back up the workshop (Redis state, outputs, inputs, user data, accounts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", metavar="DIR|s3://BUCKET/PREFIX",
                   help="where (default: CW_BACKUP_TO, else DATA/backups)")  # fmt: skip
    p.add_argument("--keep", type=int, metavar="N",
                   help=f"keep the newest N backups (default: CW_BACKUP_KEEP, else "
                   f"{DEFAULT_KEEP})")  # fmt: skip
    p.add_argument("--every", metavar="PERIOD",
                   help="run forever, one backup per PERIOD (30m, 6h, 1d)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the backups kept there")
    add_data_option(p)


def run_backup_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keep = _keep(args.keep)
        target = open_target(args.to, settings.data_dir)
        if args.list:
            _list(target)
        elif args.every:
            _every(settings, target, keep, _period(args.every))
        else:
            made = back_up(settings, target, keep, ProgressPrinter(sys.stderr))
            print(f"backed up to {target.where}/{made.id}: {_summary(made)}")
    except BackupError as exc:
        print(f"comfy-workshop backup: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("comfy-workshop backup: interrupted; no unfinished backup is ever restored "
              "(it has no manifest.json)", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    return 0


def _keep(given: int | None) -> int:
    raw = str(given) if given is not None else os.environ.get("CW_BACKUP_KEEP", "")
    try:
        keep = int(raw) if raw.strip() else DEFAULT_KEEP
    except ValueError:
        raise BackupError(f"CW_BACKUP_KEEP={raw!r} is not a number of backups") from None
    if keep < 1:
        raise BackupError("--keep must be 1 or more (the backup just made is always kept)")
    return keep


def _period(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise BackupError(f"--every {exc}") from None


def back_up(settings: Settings, target: Target, keep: int, progress: ProgressPrinter) -> Manifest:
    """One backup, recorded in Redis, then the old ones beyond `keep` removed."""
    url = _workshop_url(settings)
    client = open_client(url)
    try:
        made = _make(settings, client, target, progress)
        finished = datetime.now(UTC)
        record_last(client, settings.key_prefix, last_record(made, target.where, finished))
    except RedisError as exc:
        raise BackupError(f"Redis failed during the backup ({exc}): try again") from None
    except OSError as exc:
        raise BackupError(
            f"cannot write the backup ({exc.strerror or exc}): check the free space at "
            f"{target.where}, or choose --to"
        ) from None
    finally:
        client.close()
    for old in to_delete(target.list(), keep, made.id, finished):
        target.delete(old)
    return made


def _workshop_url(settings: Settings) -> str:
    try:
        return str(workshop_settings(settings).redis_url)
    except SystemExit as exc:
        raise BackupError(str(exc.code).removeprefix("comfy-workshop: ")) from None


def _make(
    settings: Settings, client: redis.Redis, target: Target, progress: ProgressPrinter
) -> Manifest:
    made = backup_id(datetime.now(UTC), (b.id for b in target.list()))
    try:
        return _write(settings, client, target, made, progress)
    except BaseException:
        with contextlib.suppress(BackupError, OSError):
            target.delete(made)  # not needed for safety (no manifest), only to leave no litter
        raise


def _write(
    settings: Settings, client: redis.Redis, target: Target, made: str, progress: ProgressPrinter
) -> Manifest:
    started = datetime.now(UTC)
    snapshot = read_snapshot(client, settings.key_prefix)
    with target.writer(made, SNAPSHOT) as out:
        redis_file = Counted(out)
        for chunk in encode_records(snapshot.records):
            redis_file.write(chunk)
    entries = plan_files(settings.data_dir)
    file_bytes = sum(e.size for e in entries)
    _say(progress, f"{len(snapshot.records)} keys, {len(entries)} files "
         f"({human_bytes(file_bytes)}) to {target.where}/{made}")  # fmt: skip
    with target.writer(made, ARCHIVE) as out:
        archive = Counted(out)
        files = write_tar(settings.data_dir, entries, archive, progress.update)
    progress.finish()
    manifest = Manifest(
        id=made,
        product_version=_version(),
        created_at=started,
        redis_version=snapshot.server_version,
        key_prefix=settings.key_prefix,
        key_count=len(snapshot.records),
        files=files,
        file_bytes=file_bytes,
        objects={SNAPSHOT: redis_file.stored(), ARCHIVE: archive.stored()},
    )
    with target.writer(made, MANIFEST) as out:
        out.write(manifest.to_json())  # last: from now on this is a whole backup
    return manifest


def _say(progress: ProgressPrinter, line: str) -> None:
    if not isinstance(progress, _Quiet):
        print(f"backing up {line}", file=sys.stderr)


def _version() -> str:
    try:
        return metadata.version("comfy-workshop")
    except metadata.PackageNotFoundError:
        return "unknown"


def _summary(made: Manifest) -> str:
    return (
        f"{made.key_count} keys, {made.files} files "
        f"({human_bytes(made.file_bytes)}), {human_bytes(made.stored_bytes)} stored"
    )


def _list(target: Target) -> None:
    found = sorted(target.list(), key=lambda b: sort_key(b.id))
    if not found:
        print(f"no backups at {target.where}", file=sys.stderr)
    for b in found:
        print(f"{b.id}  {'complete' if b.complete else 'unfinished (never restored)'}")


class _Quiet(ProgressPrinter):
    """No progress: a scheduled backup says one line when done."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def update(self, p: Progress) -> None:
        del p

    def finish(self) -> None:
        pass


def _every(settings: Settings, target: Target, keep: int, period: float) -> None:
    print(f"{_now()} backing up every {period:.0f} s to {target.where}, keeping {keep}",
          flush=True)  # fmt: skip
    while True:
        began = time.monotonic()
        try:
            made = back_up(settings, target, keep, _Quiet())
            print(f"{_now()} backup {made.id}: {_summary(made)}", flush=True)
        except BackupError as exc:
            print(f"{_now()} backup failed: {exc}; next try in {period:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        except Exception as exc:  # the loop's boundary: say it, try again next period
            print(f"{_now()} backup failed unexpectedly: {exc!r}; next try in {period:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        time.sleep(max(0.0, period - (time.monotonic() - began)))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
