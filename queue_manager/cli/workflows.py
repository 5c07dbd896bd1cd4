"""`comfy-workshop workflows publish|list|remove|first|send`: the instructor's workflows from the
command line (live: every participant's sidebar follows at once).

    comfy-workshop workflows publish lesson/*.json --first   # the first file opens on a first visit
    comfy-workshop workflows list
    comfy-workshop workflows send "Step 2"                   # open it in every page now
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from queue_manager.cli.operator import run_with_service
from queue_manager.cli.target import add_data_option
from queue_manager.core.errors import WorkflowInvalid, WorkflowNotFound
from queue_manager.core.ids import UserId
from queue_manager.core.workflows import name_of_file, parse_workflow
from queue_manager.service.queue import QueueService
from queue_manager.service.workflows import WorkflowCheck
from queue_manager.settings import Settings

OPERATOR = UserId("operator")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "workflows",
        help="publish, list, remove, choose the first or send the instructor's workflows",
        description="Published workflows appear in every participant's Workflows sidebar "
        "(Workshop/), read-only for them; --first opens one on a participant's first visit.",
    )
    p.add_argument("action", choices=["publish", "list", "remove", "first", "send"])
    p.add_argument("items", nargs="*", metavar="FILE|NAME",
                   help="publish: workflow files (.json, UI or API format); "
                   "remove/first/send: a published workflow's name")  # fmt: skip
    p.add_argument("--first", action="store_true", help="publish: open the (first) file on "
                   "a participant's first visit")  # fmt: skip
    p.add_argument("--name", help="publish: the name to show (one file only; default: the "
                   "file's name)")  # fmt: skip
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--randomize-seed", action="store_true", default=None,
                      help="publish: give every participant a seed of their own")  # fmt: skip
    seed.add_argument("--same-seed", dest="randomize_seed", action="store_false",
                      help="publish: everyone gets the seed in the file")  # fmt: skip
    add_data_option(p)


def run_workflows_command(settings: Settings, args: argparse.Namespace) -> int:
    return run_with_service(settings, lambda service: _run(service, args))


async def _run(service: QueueService, args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            return await _list(service)
        if args.action == "publish":
            return await _publish(service, args)
        if len(args.items) != 1:
            print(f"workflows {args.action}: give one workflow name, e.g. workflows "
                  f"{args.action} \"Step 1\"", file=sys.stderr)  # fmt: skip
            return 2
        name = args.items[0]
        if args.action == "remove":
            await service.remove_workflow(name, OPERATOR)
            print(f"removed {name} (participants' own copies stay theirs)")
        elif args.action == "first":
            await service.set_first_workflow(name, OPERATOR)
            print(f"{name} opens on a participant's first visit")
        else:
            await service.send_workflow(name, OPERATOR)
            print(f"sent {name} to every open participant page")
        return 0
    except WorkflowNotFound as exc:
        print(f"workflows {args.action}: {exc} (see: comfy-workshop workflows list)",
              file=sys.stderr)  # fmt: skip
        return 1
    except WorkflowInvalid as exc:
        print(f"workflows {args.action}: {exc}", file=sys.stderr)
        return 2


async def _list(service: QueueService) -> int:
    workflows = await service.published_workflows()
    if not workflows:
        print("no workflows published (comfy-workshop workflows publish FILE.json --first)")
        return 0
    for w in workflows:
        marks = [m for m, on in (("first", w.first), ("own seeds", w.randomize_seed)) if on]
        when = datetime.fromtimestamp(w.published_at).strftime("%H:%M")
        print(f"{w.position + 1}. {w.name}\t{w.format.value}\tv{w.version} {when}"
              f"{'  [' + ', '.join(marks) + ']' if marks else ''}")  # fmt: skip
        _print_check(await service.check_workflow(w), indent="   ")
    return 0


async def _publish(service: QueueService, args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.items]
    if not files:
        print("workflows publish: give one or more workflow files (.json)", file=sys.stderr)
        return 2
    if args.name and len(files) > 1:
        print("workflows publish: --name names one file only", file=sys.stderr)
        return 2
    # Read and check every file before publishing any: one bad file changes nothing.
    loaded: list[tuple[str, bytes]] = []
    for path in files:
        try:
            raw = path.read_bytes()
            name = args.name or name_of_file(path.name)
        except OSError as exc:
            print(f"workflows publish: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except WorkflowInvalid as exc:
            print(f"workflows publish: {path}: {exc} (use --name)", file=sys.stderr)
            return 2
        loaded.append((name, raw))
    for (_, raw), path in zip(loaded, files, strict=True):
        try:
            parse_workflow(raw, service.settings.max_workflow_bytes)
        except WorkflowInvalid as exc:
            print(f"workflows publish: {path}: {exc}; nothing was published", file=sys.stderr)
            return 2
    for i, (name, raw) in enumerate(loaded):
        workflow, check = await service.publish_workflow(
            name, raw, OPERATOR, first=args.first and i == 0, randomize_seed=args.randomize_seed
        )
        first = " (opens on a first visit)" if workflow.first else ""
        print(f"published {workflow.name} v{workflow.version}{first}")
        _print_check(check, indent="  ")
    return 0


def _print_check(check: WorkflowCheck, indent: str) -> None:
    against = "no connected GPU has" if check.against_gpus else "ComfyUI's core nodes lack"
    if check.missing.node_types:
        print(f"{indent}! nodes {against}: {', '.join(sorted(check.missing.node_types))}")
    if check.missing.models:
        print(f"{indent}! models {against}: {', '.join(sorted(check.missing.models))}")
