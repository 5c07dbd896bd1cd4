"""`comfy-workshop`: the console command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from queue_manager.local import run, run_local
from queue_manager.settings import Settings
from queue_manager.token_command import run_token_command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="comfy-workshop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole workshop locally with a private Redis")
    serve_ = sub.add_parser("serve", help="run the queue manager against CW_REDIS_URL")
    for cmd in (up, serve_):
        cmd.add_argument("--host", help="listen address (default 127.0.0.1)")
        cmd.add_argument("--port", type=int, help="listen port (default 8188)")
        cmd.add_argument("--data", type=Path, help="data folder (default ./data)")
    tok = sub.add_parser("worker-token", help="create, list or revoke GPU worker tokens")
    tok.add_argument("action", choices=["create", "list", "revoke"])
    tok.add_argument("name", nargs="?", help="the worker's name (lowercase, digits, - and _)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    given = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data", None),
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"comfy-workshop: bad settings:\n{exc}", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM during serving, then raises it again once shut down; turning it
    # into KeyboardInterrupt lets the clean-up (stopping our private Redis) run.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.command == "worker-token":
        return run_token_command(settings, args.action, args.name)
    if args.command == "up":
        run_local(settings)
    else:
        run(settings)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
