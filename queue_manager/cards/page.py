"""The instructor's "Login cards" page (`/admin/cards`): a slot per participant with its card's
state and the actions (new card, reset password, revoke), and the cards themselves once made,
printable as they stand (8 per A4 page; the controls and the slots without a card are not
printed). A card's QR code exists only in the answer that made it (Redis keeps the token's
hash only), so a slot shows a placeholder until a card is made there; `admin/static/cards.js`
puts the cards that the JSON API returns (rendered by `sheet.card_html`) in their slots."""

from __future__ import annotations

import html
from collections.abc import Sequence

from queue_manager.cards.sheet import page_html
from queue_manager.core.ids import UserId

LIFETIMES = ("2h", "4h", "8h", "12h", "1d", "3d", "7d")
DEFAULT_LIFETIME = "12h"

_PAGE_CSS = """
.toolbar { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 14px;
  align-items: center; padding: 10px 14px; margin: -8mm -8mm 6mm; background: #171c22;
  color: #e6e9ee; font: 14px system-ui, sans-serif; }
.toolbar a { color: #58a6ff; }
.toolbar h1 { font-size: 17px; margin: 0; }
.toolbar .note { flex-basis: 100%; color: #8b96a5; font-size: 12.5px; margin: 0; }
.toolbar .error { flex-basis: 100%; color: #f85149; margin: 0; }
button { font: inherit; font-size: 13px; padding: 4px 10px; border-radius: 5px; cursor: pointer;
  border: 1px solid #2a323c; background: #1e252d; color: #e6e9ee; }
button.danger { border-color: #f85149; }
.slots { display: grid; grid-template-columns: repeat(auto-fill, 96mm); gap: 10px 4mm; }
.slot .controls { display: flex; flex-wrap: wrap; gap: 4px 6px; align-items: center;
  font: 12.5px system-ui, sans-serif; margin-bottom: 3px; min-height: 26px; }
.slot .controls button { background: #fff; color: #111; border-color: #999; padding: 2px 7px; }
.slot .state { flex: 1 0 100%; color: #333; }
.card.placeholder { display: flex; border-style: solid; color: #777; align-items: center;
  justify-content: center; text-align: center; flex-direction: column; }
.card.placeholder .name { color: #111; }
@media print {
  .toolbar, .controls, .slot:not(.ready) { display: none !important; }
  body { background: #fff; padding: 0; }
  .slots { grid-template-columns: repeat(2, 96mm); grid-auto-rows: 68mm; gap: 0; }
}
"""


def dashboard_html(participants: Sequence[UserId]) -> str:
    options = "".join(
        f"<option{' selected' if v == DEFAULT_LIFETIME else ''}>{v}</option>" for v in LIFETIMES
    )
    toolbar = (
        '<header class="toolbar"><a href="/admin/">&larr; Dashboard</a><h1>Login cards</h1>'
        '<label>Links work for <select id="lifetime" data-testid="card-lifetime">'
        f"{options}</select></label>"
        '<button data-action="all" data-testid="cards-all">New cards for everyone</button>'
        '<button data-action="print" data-testid="cards-print">Print</button>'
        '<p class="note">A card\'s QR code logs its participant in once, until it expires. '
        "It is shown only right after the card is made (the server keeps no copy), and making "
        "a new card ends that participant's older one. Print prints the cards on this screen."
        '</p><p class="error" id="cards-error" role="alert" hidden></p></header>'
    )
    slots = "".join(_slot(u) for u in participants) or "<p>No participants yet.</p>"
    body = f'{toolbar}<main class="slots" id="slots" data-testid="card-slots">{slots}</main>'
    head = f'<style>{_PAGE_CSS}</style><script type="module" src="/admin/static/cards.js"></script>'
    return page_html("Workshop · login cards", body, head)


def _slot(user: UserId) -> str:
    e = html.escape(user)
    return (
        f'<section class="slot" data-user="{e}" data-testid="slot-{e}">'
        '<div class="controls"><span class="state" data-testid="state">…</span>'
        '<button data-action="new">New card</button>'
        '<button data-action="reset" class="danger">Reset password</button>'
        '<button data-action="revoke">Revoke</button></div>'
        f'<div class="holder"><article class="card placeholder"><div class="name">{e}</div>'
        "<p>Press New card to make this card's QR code.</p></article></div></section>"
    )
