"""Login cards as HTML: one card (`card_html`, also what the dashboard's cards page inserts) and a
standalone printable sheet of them (`sheet_html`): 8 cards per A4 page, the QR code inline as
SVG, nothing loaded from anywhere (a workshop network may be offline)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from queue_manager.cards.qr import qr_svg
from queue_manager.core.cards import PrintedCard

PER_PAGE = 8
ASK = "ask the instructor"

# Cards are 96 x 68 mm: two across and four down fit A4 inside 8 mm margins with room to spare,
# so rounding never pushes a card onto a page of its own.
CSS = """
@page { size: A4; margin: 8mm; }
* { box-sizing: border-box; }
body { margin: 0; font: 12pt/1.3 system-ui, "DejaVu Sans", Arial, sans-serif; color: #111;
  background: #fff; }
.page { display: grid; grid-template-columns: repeat(2, 96mm); grid-auto-rows: 68mm;
  gap: 0; break-after: page; }
.page:last-child { break-after: auto; }
.card { width: 96mm; height: 68mm; padding: 5mm; border: 0.3mm dashed #999; display: grid;
  grid-template-columns: 1fr 36mm; grid-template-rows: auto auto 1fr auto auto;
  column-gap: 3mm; overflow: hidden; break-inside: avoid; background: #fff; color: #111; }
.card .brand { grid-column: 1 / -1; font-size: 8pt; color: #555; text-transform: uppercase;
  letter-spacing: .08em; }
.card .name { font-size: 19pt; font-weight: 700; line-height: 1.15; }
.card dl { grid-column: 1; margin: 1mm 0 0; font-size: 9pt; }
.card dt { color: #555; font-size: 7pt; }
.card dd { margin: 0 0 1mm; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
  font-weight: 700; overflow-wrap: anywhere; line-height: 1.2; }
.card .qr { grid-column: 2; grid-row: 2 / 4; align-self: start; display: block; }
.card .qr svg { width: 36mm; height: 36mm; display: block; shape-rendering: crispEdges; }
.card .hint { grid-column: 1 / -1; margin: 0; font-size: 7.5pt; color: #333; }
.card .meta { grid-column: 1 / -1; margin: 0; font-size: 6.5pt; color: #777; text-align: right; }
@media screen {
  body { background: #e8e8e8; padding: 8mm; }
  .page { gap: 4mm; margin-bottom: 8mm; }
}
"""


def until(expires: float) -> str:
    """When a card's link stops working, in this machine's time zone, named (a server may
    keep UTC while the room does not): `14:03 CET on Mon 7 Dec`."""
    at = datetime.fromtimestamp(expires).astimezone()
    return f"{at:%H:%M %Z} on {at:%a} {at.day} {at:%b}".replace("  ", " ")


def card_html(card: PrintedCard) -> str:
    e = html.escape
    password = card.password if card.password is not None else ASK
    qr = qr_svg(card.link, f"Login link for {card.user}")
    return (
        f'<article class="card" data-user="{e(card.user)}" data-card="{e(card.card_id)}">'
        f'<div class="brand">Comfy Workshop</div><div class="name">{e(card.user)}</div>'
        f'<a class="qr" href="{e(card.link)}" rel="noreferrer">{qr}</a><dl>'
        f'<dt>Address</dt><dd class="url">{e(card.url)}</dd>'
        f'<dt>Name</dt><dd class="user">{e(card.user)}</dd>'
        f'<dt>Password</dt><dd class="password">{e(password)}</dd></dl>'
        f'<p class="hint">Scan the code to log in at once: it works one time, until '
        f"{e(until(card.expires))}. Afterwards log in with the name and password.</p>"
        f'<p class="meta">card {e(card.card_id)}</p></article>'
    )


def sheet_html(cards: Sequence[PrintedCard], title: str = "Login cards") -> str:
    """A standalone page to print: every card, 8 per A4 page."""
    pages = [cards[i : i + PER_PAGE] for i in range(0, len(cards), PER_PAGE)]
    body = "".join(
        '<section class="page">' + "".join(card_html(c) for c in page) + "</section>"
        for page in pages
    )
    return page_html(title, body)


def page_html(title: str, body: str, head: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style>{head}</head>"
        f"<body>{body}</body></html>"
    )
