"""`comfy-workshop status [--data DIR] [--json]`: the operator's one screen, e.g. over SSH.

The queue (waiting by lane and user, running, the instructor's pause), the worker agents and
push endpoints, Redis's health (version, memory, persistence), the data folder's disk use and
the last backup. Redis unreachable is said in one line, and the disk is shown all the same.

Exit code, for monitoring: 0 when all is well; 1 when something needs attention (jobs wait and
no worker or endpoint is connected, Redis's AOF is off or failing, its last snapshot failed,
the data folder's disk is nearly full, Redis is unreachable); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.operator_status import Reading, as_json, exit_code, findings, render
from queue_manager.service.operator_status import read_workshop
from queue_manager.settings import Settings
from queue_manager.storage.disk_use import disk_use

INTERRUPTED = 130


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="the workshop at a glance: queue, workers, Redis, disk, last backup "
        "(exit 1 when something needs attention)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    add_data_option(p)


def run_status_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        reading = _read(settings)
    except KeyboardInterrupt:
        return INTERRUPTED
    found = findings(reading)
    if args.json:
        print(json.dumps(as_json(reading, found), indent=2))
    else:
        print(render(reading, found))
    sys.stdout.flush()
    return exit_code(found)


def _read(settings: Settings) -> Reading:
    now = time.time()
    disk = disk_use(settings.data_dir)
    try:
        target = workshop_settings(settings)
    except SystemExit as exc:  # no Redis answers: its one line, without our program's name
        said = str(exc.code).removeprefix("comfy-workshop: ")
        return Reading(now, disk, unreachable=said)
    return asyncio.run(read_workshop(target, disk, now))
