"""`comfy-workshop templates mode [all|mark|hide|off]` and `templates check`: what the
participants' Templates browser shows of ComfyUI's official templates, live (pages read it
the next time the browser loads its index), and which of them the room's GPUs cannot run."""

from __future__ import annotations

import argparse

from queue_manager.cli.operator import run_with_service
from queue_manager.cli.target import add_data_option
from queue_manager.core.ids import UserId
from queue_manager.core.templates import TemplatesMode
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings

OPERATOR = UserId("operator")
_MEANING = {
    TemplatesMode.ALL: "every official template, unmarked",
    TemplatesMode.MARK: "every official template; those the GPUs cannot run say why",
    TemplatesMode.HIDE: "only the official templates the GPUs can run",
    TemplatesMode.OFF: "no official templates (the workshop's own workflows only)",
}


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "templates",
        help="what the participants' Templates browser shows of ComfyUI's official templates",
    )
    p.add_argument("action", choices=["mode", "check"])
    p.add_argument(
        "mode",
        nargs="?",
        choices=[m.value for m in TemplatesMode],
        help="for mode: all, mark (default), hide or off; none: show the current one",
    )
    add_data_option(p)


def run_templates_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "check" and args.mode:
        print("templates check takes no mode (set one with: comfy-workshop templates mode MODE)")
        return 2
    return run_with_service(settings, lambda service: _run(service, args))


async def _run(service: QueueService, args: argparse.Namespace) -> int:
    if args.action == "mode" and args.mode:
        mode = TemplatesMode(args.mode)
        await service.set_templates_mode(mode, OPERATOR)
        print(f"templates: {mode.value} ({_MEANING[mode]}); pages follow when they reopen it")
        return 0
    if args.action == "mode":
        mode = await service.templates_mode()
        print(f"templates: {mode.value} ({_MEANING[mode]})")
        return 0
    return await _check(service)


async def _check(service: QueueService) -> int:
    overview = await service.templates_overview()
    print(
        f"templates: {overview.mode.value}; package {overview.package_version or 'not installed'}"
    )
    if overview.runnable is None:
        print(f"{overview.official} official templates; no GPU has reported yet, so none checked")
    else:
        print(f"{overview.runnable} of {overview.official} official templates run on the GPUs")
    for name, words in overview.lacking.items():
        print(f"  {name}: {words}")
    return 0
