"""`comfy-workshop cards`: printable login cards (PDF or HTML) for the participants of the
workshop running on a data folder: address, name, password and a QR code that logs its
participant in once. Making a card ends the user's older card; the PDF/HTML holds live login
links and passwords, so it is written 0600.

Passwords come from DATA/credentials.csv where they still open their account (Redis keeps only
argon2 hashes); otherwise the card says "ask the instructor", or `--reset-passwords` gives
everyone printed a new one (their sessions end; the file is updated)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from redis.exceptions import RedisError

from queue_manager.cards.sheet import sheet_html
from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.cards import PrintedCard, parse_lifetime, printed, public_url
from queue_manager.core.errors import AccountNotFound
from queue_manager.service.cards import open_login_cards
from queue_manager.settings import Settings, is_loopback
from queue_manager.store.connection import connect

OPERATOR = "operator"
FORMATS = (".pdf", ".html", ".htm")


class CardsError(Exception):
    """A refusal said in one line (the exit status is 1)."""


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cards",
        help="print login cards (PDF or HTML): address, name, password and a one-time QR login",
    )
    p.add_argument("--out", type=Path, default=Path("cards.pdf"), help="cards.pdf or cards.html")
    p.add_argument("--users", help="comma-separated names (default: every participant)")
    p.add_argument("--expires", default="12h", help="how long the QR links work (12h, 90m, 1d)")
    p.add_argument("--url", help="the address participants open (default: CW_PUBLIC_URL)")
    p.add_argument(
        "--reset-passwords",
        action="store_true",
        help="give each of these users a new password, printed on the card (ends their sessions)",
    )
    add_data_option(p)


def run_cards_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        lifetime = parse_lifetime(args.expires)
        out = _output(args.out)
        url = _address(settings, args.url)
        target = workshop_settings(settings)
        made = asyncio.run(_make(target, _names(args.users), lifetime, args.reset_passwords, url))
        _write(out, made)
    except (CardsError, ValueError) as exc:
        print(f"comfy-workshop cards: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("comfy-workshop cards: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {len(made)} card(s) to {out}", file=sys.stderr)
    print(out)
    return 0


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise CardsError("--users names nobody: give names like user001,user002")
    return names


def _output(path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise CardsError(f"--out {path}: the file ends in .pdf or .html")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CardsError(f"--out {path}: cannot write into {folder}")
    return path


def _address(settings: Settings, given: str | None) -> str:
    """The address printed, and where it came from (said on stderr)."""
    if given:
        url, source = public_url(given), "--url"
    elif settings.public_url:
        url, source = settings.public_url, "CW_PUBLIC_URL"
    else:
        url = f"http://{settings.host}:{settings.port}/"
        source = "the address `up` prints with CW_HOST/CW_PORT; give --url if it is another"
        if not is_loopback(settings.host):
            source += ", or if participants reach it by another name"
    print(f"cards: participants' address {url} (from {source})", file=sys.stderr)
    return url


async def _make(
    settings: Settings, names: list[str] | None, lifetime: float, reset: bool, url: str
) -> list[PrintedCard]:
    redis = connect(str(settings.redis_url), retries=1)
    try:
        cards = open_login_cards(redis, settings)
        users = names if names is not None else await cards.participants()
        if not users:
            raise CardsError("there are no participants yet: add them with `users add NAME`")
        made = await cards.issue(users, lifetime, OPERATOR, reset_passwords=reset, progress=_tick)
    except AccountNotFound as exc:
        raise CardsError(
            f"no account {exc.name!r} (`comfy-workshop users list` shows them); nothing changed"
        ) from None
    except RedisError as exc:
        raise CardsError(f"the workshop's Redis did not answer: {exc}") from None
    finally:
        await redis.aclose()
    return [printed(card, url) for card in made]


def _tick(done: int, total: int) -> None:
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\rcards: checking passwords {done}/{total}", end=end, file=sys.stderr, flush=True)


def _write(path: Path, cards: Sequence[PrintedCard]) -> None:
    """To a temporary name, 0600 from the start, then renamed into place."""
    # Imported here: fpdf2 (with fontTools) would slow the start of every other subcommand.
    from queue_manager.cards.pdf import cards_pdf

    data = cards_pdf(cards) if path.suffix.lower() == ".pdf" else sheet_html(cards).encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
