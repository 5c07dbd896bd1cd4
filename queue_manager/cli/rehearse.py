"""`comfy-workshop rehearse URL --users N`: the day rehearsed against a running workshop (the real
one with its GPUs, or a local `comfy-workshop up`): N stand-in participants log in, press Run,
wait for their images; the report says how long images took, whether the queue was fair, how
busy the GPUs were, what went wrong, and how the queue manager's memory held.

    comfy-workshop rehearse https://workshop.example.org --users 20 --browsers 4 --html r.html

Accounts: with an instructor's login (the instructor row of the data folder's credentials.csv,
or --instructor NAME) it makes participant accounts of its own (rehearsal-<tag>-001...) and
removes them, with their files, at the end, also after Ctrl-C or an error. With --credentials
FILE it logs in with that file's participant accounts instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys
from pathlib import Path

from queue_manager.cli.target import add_data_option
from queue_manager.rehearsal.client import Login, WorkshopError
from queue_manager.rehearsal.display import Board
from queue_manager.rehearsal.page import html_report
from queue_manager.rehearsal.report import Results, text_report
from queue_manager.rehearsal.run import ACCOUNT_PREFIX, Options, rehearse
from queue_manager.settings import Settings

INTERRUPTED = 130


class BadOptions(ValueError):
    """An option the operator must correct (exit 2, nothing done)."""


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rehearse",
        help="drive N stand-in participants against a running workshop and report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="the workshop's address, e.g. https://workshop.example.org")
    p.add_argument("--users", type=int, required=True, metavar="N", help="participants")
    p.add_argument("--jobs-per-user", type=int, default=2, metavar="K",
                   help="times each participant presses Run (default 2)")  # fmt: skip
    p.add_argument("--workflow", type=Path, metavar="FILE",
                   help="the workflow to run (API or UI format; default: the instructor's first "
                   "published workflow, else a built-in text-to-image graph)")  # fmt: skip
    p.add_argument("--browsers", type=int, default=0, metavar="M",
                   help="how many of the N use a real headless Chromium page (needs the "
                   "`rehearse` extra and Debian's chromium)")  # fmt: skip
    p.add_argument("--credentials", type=Path, metavar="FILE",
                   help="log in with this file's participant accounts (user,role,password) "
                   "instead of making accounts")  # fmt: skip
    p.add_argument("--instructor", metavar="NAME",
                   help="the instructor's login, to make accounts and read the job records "
                   "(default: the credentials file's instructor row)")  # fmt: skip
    p.add_argument("--password", help="the instructor's password (asked for when missing)")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML report")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds a job may take from Run to image (default 600)")  # fmt: skip
    p.add_argument("--keep-accounts", action="store_true",
                   help="keep the accounts made (to look at their pages)")  # fmt: skip
    add_data_option(p)


def run_rehearse_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        options = _options(settings, args)
    except BadOptions as exc:
        print(f"comfy-workshop rehearse: {exc}", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(_main(options))
    except KeyboardInterrupt:
        print(f"comfy-workshop rehearse: stopped during the clean-up; accounts named "
              f"{ACCOUNT_PREFIX}-* may remain: remove them with `comfy-workshop users remove "
              "NAME` on the server", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    except WorkshopError as exc:
        print(f"comfy-workshop rehearse: {exc}", file=sys.stderr)
        return 1
    return _report(results, args.html)


def _options(settings: Settings, args: argparse.Namespace) -> Options:
    url = str(args.url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise BadOptions(f"{args.url!r} is not an address: give it as https://HOST (or http://)")
    if args.users < 1 or args.jobs_per_user < 1:
        raise BadOptions("--users and --jobs-per-user are at least 1")
    if not 0 <= args.browsers <= args.users:
        raise BadOptions(f"--browsers is between 0 and --users ({args.users})")
    if args.timeout <= 0:
        raise BadOptions("--timeout is a number of seconds above 0")
    if args.password is not None and args.instructor is None:
        raise BadOptions("--password goes with --instructor NAME")
    if args.workflow is not None and not args.workflow.is_file():
        raise BadOptions(f"--workflow {args.workflow}: no such file")
    if args.html is not None and not args.html.parent.resolve().is_dir():
        raise BadOptions(f"--html {args.html}: its folder does not exist")
    return Options(
        url=url, users=args.users, jobs_per_user=args.jobs_per_user, browsers=args.browsers,
        workflow=args.workflow,
        credentials=args.credentials or settings.data_dir / "credentials.csv",
        credentials_given=args.credentials is not None,
        instructor=_instructor(args), timeout=args.timeout, keep_accounts=args.keep_accounts,
    )  # fmt: skip


def _instructor(args: argparse.Namespace) -> Login | None:
    if args.instructor is None:
        return None
    password = args.password
    if password is None:
        if not sys.stdin.isatty():
            raise BadOptions("--instructor needs --password (no terminal to ask on)")
        password = getpass.getpass(f"password of {args.instructor}: ")
    return Login(args.instructor, password)


async def _main(options: Options) -> Results:
    """The rehearsal; the first Ctrl-C (or SIGTERM) stops the participants and still cleans
    up and reports; a second one quits at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def stopping() -> None:
        if not stop.is_set():
            stop.set()
            print("\nstopping: cleaning up, then the report (Ctrl-C again quits at once)",
                  file=sys.stderr)  # fmt: skip
            loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C: KeyboardInterrupt

    loop.add_signal_handler(signal.SIGINT, stopping)
    loop.add_signal_handler(signal.SIGTERM, stopping)
    try:
        return await rehearse(
            options, lambda users: Board(users, options.jobs_per_user, sys.stderr), stop
        )
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _report(results: Results, html: Path | None) -> int:
    print(text_report(results), end="")
    if html is not None:
        try:
            html.write_text(html_report(results), encoding="utf-8")
        except OSError as exc:
            print(f"comfy-workshop rehearse: cannot write {html}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"HTML report: {html}")
    if results.interrupted:
        return INTERRUPTED
    return 1 if results.problems else 0
