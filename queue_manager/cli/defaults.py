"""`comfy-workshop defaults list|set KEY JSON_VALUE|unset KEY`: the participants' default ComfyUI
settings (a participant's own saved settings always win; these fill in the rest, from their
next page load)."""

from __future__ import annotations

import argparse
import asyncio
import json

from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.errors import SettingDefaultInvalid
from queue_manager.core.ids import UserId
from queue_manager.core.setting_defaults import parse_value
from queue_manager.service.setting_defaults import open_setting_defaults
from queue_manager.settings import Settings
from queue_manager.store.connection import connect

# Who the log lines name for a change made from the command line.
OPERATOR = UserId("operator")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "defaults",
        help="list, set or unset participants' default ComfyUI settings",
        description=__doc__,
    )
    p.add_argument("action", choices=["list", "set", "unset"])
    p.add_argument("key", nargs="?", help="a setting id, e.g. Comfy.TutorialCompleted")
    p.add_argument("value", nargs="?", help="for set: its JSON value, e.g. true or '\"dark\"'")
    add_data_option(p)


def run_defaults_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(workshop_settings(settings), args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    defaults = open_setting_defaults(redis, settings)
    try:
        if args.action == "list":
            for key, value in (await defaults.all()).items():
                print(f"{key}\t{json.dumps(value)}")
            return 0
        if not args.key or (args.action == "set") != (args.value is not None):
            wanted = "KEY JSON_VALUE" if args.action == "set" else "KEY"
            print(f"usage: comfy-workshop defaults {args.action} {wanted}")
            return 2
        if args.action == "set":
            await defaults.set(args.key, parse_value(args.key, args.value), OPERATOR)
            print(f"{args.key}\t{json.dumps(json.loads(args.value))}")
            return 0
        if not await defaults.unset(args.key, OPERATOR):
            print(f"no default for {args.key} (see: comfy-workshop defaults list)")
            return 1
        print(f"unset {args.key}")
        return 0
    except SettingDefaultInvalid as exc:
        print(f"defaults {args.action}: {exc}")
        return 2
    finally:
        await redis.aclose()
