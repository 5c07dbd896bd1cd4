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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="comfy-workshop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole workshop locally with a private Redis")
    serve_ = sub.add_parser("serve", help="run the queue manager against CW_REDIS_URL")
    for cmd in (up, serve_):
        cmd.add_argument("--host", help="listen address (default 127.0.0.1)")
        cmd.add_argument("--port", type=int, help="listen port (default 8188)")
        cmd.add_argument("--data", type=Path, help="data folder (default ./data)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides = {
        k: v
        for k, v in {"host": args.host, "port": args.port, "data_dir": args.data}.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"comfy-workshop: bad settings:\n{exc}", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM during serving, then raises it again once shut down; turning it
    # into KeyboardInterrupt lets the clean-up (stopping our private Redis) run.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.command == "up":
        run_local(settings)
    else:
        run(settings)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
