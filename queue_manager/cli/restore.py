"""`comfy-workshop restore [--from DIR|s3://BUCKET/PREFIX] [BACKUP|latest] [--force]`: put a
backup back, the workshop's Redis state and files as they were when it was made.

Nothing changes before the whole backup is fetched and every object matches its checksum, the
files are unpacked beside the data folder, and the target Redis has shown it can load the
snapshot. Then the workshop's keys (only those under its prefix) are replaced in one
transaction, and each backed-up folder is swapped for the restored one by rename.

Refused while the workshop is in use (jobs queued or running, workers or a queue manager
active), unless --force. With no workshop running on the data folder (and no CW_REDIS_URL of
its own), the folder's private Redis is started for the restore and stopped after it: the way
to bring a local workshop back on a new machine before its first `up`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.exceptions import RedisError

from queue_manager.cli.progress import ProgressPrinter
from queue_manager.cli.redis_server import RedisServer, RedisServerError
from queue_manager.cli.target import (
    DEFAULT_REDIS_URL,
    add_data_option,
    running_redis_url,
    workshop_settings,
)
from queue_manager.core.backups import (
    ARCHIVE,
    MANIFEST,
    SNAPSHOT,
    BackupError,
    Manifest,
    Stored,
    decode_records,
    mismatches,
    newest_complete,
    parse_manifest,
)
from queue_manager.core.sizes import human_bytes
from queue_manager.settings import Settings
from queue_manager.storage.backup_files import remove_tree, swap_in, unpack
from queue_manager.storage.backup_targets import Target, checksum, open_target
from queue_manager.storage.export_plan import Progress
from queue_manager.store.snapshot import (
    check_loadable,
    live_signs,
    open_client,
    replace_all,
    server_time_ms,
)

INTERRUPTED = 130
STOP_IT = (
    "stop the queue manager first (Ctrl-C on `comfy-workshop up`, `docker compose stop "
    "queue-manager`, or `systemctl stop` its unit) and let running jobs end, or add --force"
)


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "restore",
        help="put a backup back (Redis state and files); refused while the workshop is in use",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("backup", nargs="?", default="latest", metavar="BACKUP|latest",
                   help="a backup's name (`backup --list`), default: the newest")  # fmt: skip
    p.add_argument("--from", dest="source", metavar="DIR|s3://BUCKET/PREFIX",
                   help="where (default: CW_BACKUP_TO, else DATA/backups)")  # fmt: skip
    p.add_argument("--force", action="store_true",
                   help="restore even though the workshop looks in use")  # fmt: skip
    add_data_option(p)


@dataclass
class _Run:
    changing: bool = False  # from the first change on, an interruption needs a second run


def run_restore_command(settings: Settings, args: argparse.Namespace) -> int:
    run = _Run()
    try:
        target = open_target(args.source, settings.data_dir)
        chosen = _chosen(target, args.backup)
        _restore(settings, target, chosen, args.force, run)
    except BackupError as exc:
        print(f"comfy-workshop restore: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        said = (
            "interrupted while putting the backup back: run the same restore again to finish"
            if run.changing
            else "interrupted; nothing was changed"
        )
        print(f"comfy-workshop restore: {said}", file=sys.stderr)
        return INTERRUPTED
    return 0


def _chosen(target: Target, wanted: str) -> str:
    listed = target.list()
    if wanted == "latest":
        newest = newest_complete(listed)
        if newest is None:
            raise BackupError(f"no complete backup at {target.where}: give --from DIR|s3://...")
        return newest
    if not any(b.id == wanted and b.complete for b in listed):
        raise BackupError(
            f"no complete backup {wanted!r} at {target.where}: see `comfy-workshop backup "
            "--list` (with the same --to)"
        )
    return wanted


def _restore(settings: Settings, target: Target, chosen: str, force: bool, run: _Run) -> None:
    data = settings.data_dir
    staging = data / f".restore-{chosen}"
    remove_tree(staging)
    try:
        staging.mkdir(parents=True)
        manifest, paths = _fetched(target, chosen, staging)
        if manifest.key_prefix != settings.key_prefix:
            raise BackupError(
                f"backup {chosen} is of the workshop with key prefix {manifest.key_prefix!r}, "
                f"this one's is {settings.key_prefix!r}: set CW_KEY_PREFIX to restore it"
            )
        unpack(paths[ARCHIVE], staging / "files")
        records = decode_records(paths[SNAPSHOT].read_bytes())
        with _redis(settings) as (client, up_running):
            _check_idle(settings, client, up_running, force)
            if records:
                check_loadable(client, settings.key_prefix, records[0], manifest.redis_version)
            run.changing = True
            keys = replace_all(client, settings.key_prefix, records, server_time_ms(client))
        swap_in(data, staging / "files")
    except RedisError as exc:
        raise BackupError(f"Redis failed during the restore ({exc}): run it again") from None
    except OSError as exc:
        raise BackupError(
            f"cannot write into {data} ({exc.strerror or exc}): check its free space and "
            "rights, then run the restore again"
        ) from None
    finally:
        remove_tree(staging)
    print(
        f"restored {chosen} from {target.where}: {keys} keys, {manifest.files} files "
        f"({human_bytes(manifest.file_bytes)}); made by comfy-workshop "
        f"{manifest.product_version} at {manifest.created_at:%Y-%m-%d %H:%M} UTC"
    )


def _fetched(target: Target, chosen: str, staging: Path) -> tuple[Manifest, dict[str, Path]]:
    """The manifest and every object, fetched and each checked against its checksum."""
    manifest = parse_manifest(target.fetch(chosen, MANIFEST, staging, _ignore).read_bytes())
    total = sum(o.size for o in manifest.objects.values())
    progress = ProgressPrinter(sys.stderr)
    counter = _Counter(progress, len(manifest.objects), total)
    print(f"fetching and checking {chosen} ({human_bytes(total)})", file=sys.stderr)
    paths: dict[str, Path] = {}
    found: dict[str, Stored] = {}
    for name in manifest.objects:
        if not target.exists(chosen, name):
            continue  # said below, as missing
        paths[name] = target.fetch(chosen, name, staging, counter.add)
        found[name] = checksum(paths[name], counter.add)
        counter.done_one()
    progress.finish()
    wrong = mismatches(manifest, found)
    if wrong or SNAPSHOT not in paths or ARCHIVE not in paths:
        said = "; ".join(wrong) or "it lacks the snapshot or the files"
        raise BackupError(
            f"backup {chosen} is damaged ({said}): nothing was changed; restore another "
            "(`comfy-workshop backup --list`)"
        )
    return manifest, paths


def _ignore(n: int) -> None:
    del n


class _Counter:
    """Bytes fetched and checked (each byte counts twice when fetched from S3: a rough bar)."""

    def __init__(self, progress: ProgressPrinter, objects: int, total: int) -> None:
        self._progress, self._objects, self._total = progress, objects, total
        self._done, self._bytes = 0, 0

    def add(self, n: int) -> None:
        self._bytes = min(self._total, self._bytes + n)
        self._show()

    def done_one(self) -> None:
        self._done += 1
        self._show()

    def _show(self) -> None:
        self._progress.update(Progress(self._done, self._objects, self._bytes, self._total))


@contextlib.contextmanager
def _redis(settings: Settings) -> Iterator[tuple[redis.Redis, bool]]:
    """A client of the workshop's Redis, and whether `up` runs on the data folder. With none
    running there (and no CW_REDIS_URL of the operator's), the folder's own Redis is started
    for the restore and stopped (its AOF written) after it."""
    up_running = running_redis_url(settings.data_dir) is not None
    explicit = "redis_url" in settings.model_fields_set
    if up_running or (explicit and str(settings.redis_url) != DEFAULT_REDIS_URL):
        try:
            url = str(workshop_settings(settings).redis_url)
        except SystemExit as exc:
            raise BackupError(str(exc.code).removeprefix("comfy-workshop: ")) from None
        with contextlib.closing(open_client(url)) as client:
            yield client, up_running
        return
    server = RedisServer(
        settings.data_dir.resolve() / "redis", appendonly=True, owner="comfy-workshop restore"
    )
    try:
        server.start()
    except RedisServerError as exc:
        raise BackupError(str(exc)) from None
    print(f"started the workshop's Redis on {settings.data_dir} for the restore", file=sys.stderr)
    try:
        with contextlib.closing(open_client(server.url)) as client:
            yield client, False
    finally:
        server.stop()


def _check_idle(settings: Settings, client: redis.Redis, up_running: bool, force: bool) -> None:
    signs = live_signs(client, settings.key_prefix, time.time(), settings.worker_timeout_seconds)
    if up_running:
        signs.insert(0, f"`comfy-workshop up` runs on {settings.data_dir}")
    if signs and not force:
        raise BackupError(f"the workshop is in use ({'; '.join(signs)}): {STOP_IT}")
    if signs:
        print(f"restoring although the workshop is in use ({'; '.join(signs)}): restart its "
              "queue manager afterwards", file=sys.stderr)  # fmt: skip
