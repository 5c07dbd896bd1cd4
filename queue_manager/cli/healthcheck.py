"""`comfy-workshop healthcheck [--url URL ...]`: the containers' HEALTHCHECK.

Asks each URL (default: this queue manager's own `/healthz` on CW_PORT) and exits 0 when every
one answers 2xx within the timeout, else 1 with one line saying which did not. A standard library
client, so a check costs one short-lived Python process and nothing else in the image."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from queue_manager.settings import Settings

TIMEOUT = 3.0


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser(
        "healthcheck", help="exit 0 when the queue manager (or each --url) answers (containers)"
    )
    check.add_argument(
        "--url",
        action="append",
        default=[],
        help="a URL that must answer 2xx (repeatable; default http://127.0.0.1:CW_PORT/healthz)",
    )


def run_healthcheck_command(settings: Settings, args: argparse.Namespace) -> int:
    urls = args.url or [f"http://127.0.0.1:{settings.port}/healthz"]
    for url in urls:
        if (problem := _problem(url)) is not None:
            print(f"comfy-workshop healthcheck: {url}: {problem}", file=sys.stderr)
            return 1
    return 0


def _problem(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return None if 200 <= answer.status < 300 else f"answered {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"
