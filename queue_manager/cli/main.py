"""`comfy-workshop`: the console command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr, ValidationError

from queue_manager.cli import backup as backup_cli
from queue_manager.cli import cards, endpoints, healthcheck, preflight, room, workflows
from queue_manager.cli import defaults as defaults_cli
from queue_manager.cli import nginx_site as nginx_site_cli
from queue_manager.cli import rehearse as rehearse_cli
from queue_manager.cli import restore as restore_cli
from queue_manager.cli import status as status_cli
from queue_manager.cli import systemd as systemd_cli
from queue_manager.cli import templates as templates_cli
from queue_manager.cli.session_secret import kept_secret
from queue_manager.cli.target import add_data_option
from queue_manager.cli.tokens import run_token_command
from queue_manager.cli.up import LocalOptions, run, run_local
from queue_manager.cli.users import run_users_command
from queue_manager.core.endpoints import parse_endpoint_spec
from queue_manager.core.errors import EndpointInvalid
from queue_manager.settings import Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="comfy-workshop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole workshop locally with a private Redis")
    serve_ = sub.add_parser("serve", help="run the queue manager against CW_REDIS_URL")
    for cmd in (up, serve_):
        cmd.add_argument("--host", help="listen address (default 127.0.0.1)")
        cmd.add_argument("--port", type=int, help="listen port (default 8188)")
        cmd.add_argument("--data", type=Path, help="data folder (default ./data)")
    serve_.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help="with a placeholder CW_SECRET_KEY (local mode): sign sessions with the secret kept "
        "in FILE, made random on first start (compose's rehearsal overlay)",
    )
    up.add_argument("--users", type=int, default=20, help="participants (default 20)")
    up.add_argument("--workers", type=int, default=1, help="simulated GPU workers (default 1)")
    up.add_argument("--comfyui-url", help="run one worker agent for this ComfyUI instead")
    up.add_argument("--step-delay", type=float, default=0.05, help="simulated seconds per step")
    up.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="URL[,OPTION=VALUE...]",
        help="add a push endpoint (repeatable; options as `endpoint add`'s: slots=2, "
        "outputs=DIR, inputs=DIR, kind=..., cold-start-timeout=S, job-timeout=S, "
        "header=Name: value, name=NAME); with --workers 0 for endpoints only",
    )
    # The GPU side is a program of its own (`python -m worker`, `python -m worker.simulator`):
    # `comfy-workshop worker|simulator ARGS` runs it in this process's place.
    sub.add_parser(
        "simulator",
        help="run a ComfyUI simulator (no GPU needed; `comfy-workshop simulator --help`)",
        add_help=False,
    )
    sub.add_parser(
        "worker", help="run a GPU worker agent (settings: CW_WORKER_* variables)", add_help=False
    )
    users = sub.add_parser(
        "users",
        help="add, remove, list accounts, reset a password or change a role "
        "(reset, role and remove end the account's sessions)",
    )
    users.add_argument("action", choices=["add", "remove", "list", "reset", "role"])
    users.add_argument("name", nargs="?")
    users.add_argument(
        "--role",
        choices=["participant", "instructor"],
        default="participant",
        help="for add, and the new role for role",
    )
    users.add_argument("--password", help="default: a random one, printed once")
    add_data_option(users)
    endpoints.add_arguments(sub)
    templates_cli.add_arguments(sub)
    room.add_arguments(sub)
    backup_cli.add_arguments(sub)
    restore_cli.add_arguments(sub)
    cards.add_arguments(sub)
    workflows.add_arguments(sub)
    defaults_cli.add_arguments(sub)
    rehearse_cli.add_arguments(sub)
    nginx_site_cli.add_arguments(sub)
    status_cli.add_arguments(sub)
    systemd_cli.add_arguments(sub)
    healthcheck.add_arguments(sub)
    sub.add_parser(
        "preflight",
        help="check a docker compose deployment's .env, prepare its folders (its setup service)",
        add_help=False,
    )
    tok = sub.add_parser("worker-token", help="create, list or revoke GPU worker tokens")
    tok.add_argument("action", choices=["create", "list", "revoke"])
    tok.add_argument("name", nargs="?", help="the worker's name (lowercase, digits, - and _)")
    add_data_option(tok)
    return p


# Subcommands that are the GPU side's own programs (see `_parser`).
GPU_SIDE = {"worker": "worker", "simulator": "worker.simulator"}


# Operator subcommands that take the settings and their parsed arguments.
OPERATOR_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "endpoint": endpoints.run_endpoint_command,
    "templates": templates_cli.run_templates_command,
    "room": room.run_room_command,
    "backup": backup_cli.run_backup_command,
    "restore": restore_cli.run_restore_command,
    "cards": cards.run_cards_command,
    "workflows": workflows.run_workflows_command,
    "defaults": defaults_cli.run_defaults_command,
    "rehearse": rehearse_cli.run_rehearse_command,
    "nginx-site": nginx_site_cli.run_nginx_site_command,
    "status": status_cli.run_status_command,
    "systemd": systemd_cli.run_systemd_command,
    "healthcheck": healthcheck.run_healthcheck_command,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in GPU_SIDE:
        os.execv(sys.executable, [sys.executable, "-m", GPU_SIDE[argv[0]], *argv[1:]])
    if argv and argv[0] == "preflight":
        # Before Settings: its own words for a .env that Settings would refuse.
        return preflight.main(argv[1:])
    args = _parser().parse_args(argv)
    # The servers log what they do; an operator command says it in its own lines (the use
    # cases' INFO lines would repeat them), so only warnings and errors are logged there.
    serving = args.command in ("up", "serve")
    logging.basicConfig(
        level=logging.INFO if serving else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Every command with --data (up, serve, and the operator's: cli/target.py) acts on that folder.
    given: dict[str, Any] = {"data_dir": getattr(args, "data", None)}
    if args.command in ("up", "serve"):
        given |= {"host": args.host, "port": args.port}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"comfy-workshop: bad settings:\n{exc}", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM during serving, then raises it again once shut down; turning it
    # into KeyboardInterrupt lets the clean-up (stopping our private Redis) run.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.command == "users":
        return run_users_command(settings, args.action, args.name, args.role, args.password)
    if args.command in OPERATOR_COMMANDS:
        return OPERATOR_COMMANDS[args.command](settings, args)
    if args.command == "worker-token":
        return run_token_command(settings, args.action, args.name)
    if args.command == "up":
        try:
            chosen = tuple(
                parse_endpoint_spec(spec, f"endpoint-{i}")
                for i, spec in enumerate(args.endpoint, start=1)
            )
        except EndpointInvalid as exc:
            print(f"comfy-workshop up --endpoint: {exc}", file=sys.stderr)
            return 2
        run_local(
            settings,
            LocalOptions(args.users, args.workers, args.comfyui_url, args.step_delay, chosen),
        )
    else:
        if args.secret_file is not None and settings.has_placeholder_secret():
            secret = kept_secret(args.secret_file)
            settings = settings.model_copy(update={"secret_key": SecretStr(secret)})
        run(settings)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
