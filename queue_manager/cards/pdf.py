"""Login cards as a PDF (fpdf2): 8 cards per A4 page (2 x 4, dashed cut lines), the QR code
drawn as vector rectangles (crisp at any printer resolution) and also a clickable link.

The PDF's built-in fonts cover Latin-1 only: a password outside it is printed as "ask the
instructor" rather than wrongly; other text has such characters replaced."""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from queue_manager.cards.qr import dark_runs, size
from queue_manager.cards.sheet import ASK, PER_PAGE, until
from queue_manager.core.cards import PrintedCard

PAGE_W, PAGE_H = 210.0, 297.0
CARD_W, CARD_H = PAGE_W / 2, PAGE_H / 4
PAD = 6.0
QR = 38.0
TEXT_W = CARD_W - 2 * PAD - QR - 4.0


def cards_pdf(cards: Sequence[PrintedCard], title: str = "Login cards") -> bytes:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(title)
    pdf.set_creator("Comfy Workshop")
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(0, 0, 0)
    for i, card in enumerate(cards):
        if i % PER_PAGE == 0:
            pdf.add_page()
            _cut_lines(pdf)
        slot = i % PER_PAGE
        _card(pdf, card, (slot % 2) * CARD_W, (slot // 2) * CARD_H)
    return bytes(pdf.output())


def _cut_lines(pdf: FPDF) -> None:
    pdf.set_draw_color(160, 160, 160)
    pdf.set_line_width(0.2)
    with pdf.local_context():
        pdf.set_dash_pattern(dash=1.5, gap=1.5)
        pdf.line(CARD_W, 0, CARD_W, PAGE_H)
        for row in range(1, 4):
            pdf.line(0, row * CARD_H, PAGE_W, row * CARD_H)


def _card(pdf: FPDF, card: PrintedCard, x: float, y: float) -> None:
    pdf.set_text_color(90, 90, 90)
    pdf.set_font("helvetica", "", 7)
    pdf.set_xy(x + PAD, y + PAD)
    pdf.cell(TEXT_W, 3, "COMFY WORKSHOP", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("helvetica", "B", 18)
    pdf.set_xy(x + PAD, y + PAD + 4)
    pdf.cell(TEXT_W, 9, _latin1(card.user), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    top = y + PAD + 16
    top = _field(pdf, x + PAD, top, "Address", _latin1(card.url))
    top = _field(pdf, x + PAD, top, "Name", _latin1(card.user))
    password = card.password if card.password is not None and _fits(card.password) else ASK
    _field(pdf, x + PAD, top, "Password", password)
    _hint(pdf, card, x, y)
    _qr(pdf, card.link, x + CARD_W - PAD - QR, y + PAD)


def _field(pdf: FPDF, x: float, y: float, label: str, value: str) -> float:
    """A label and its value below it (wrapped); the y after it."""
    pdf.set_text_color(90, 90, 90)
    pdf.set_font("helvetica", "", 7)
    pdf.set_xy(x, y)
    pdf.cell(TEXT_W, 3, label)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("courier", "B", 9.5)
    pdf.set_xy(x, y + 3)
    pdf.multi_cell(TEXT_W, 4, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return pdf.get_y() + 1.2


def _hint(pdf: FPDF, card: PrintedCard, x: float, y: float) -> None:
    pdf.set_font("helvetica", "", 7)
    pdf.set_text_color(40, 40, 40)
    pdf.set_xy(x + PAD, y + CARD_H - PAD - 9)
    text = (
        f"Scan the code to log in at once: it works one time, until {until(card.expires)}. "
        "Afterwards log in with the name and password."
    )
    pdf.multi_cell(CARD_W - 2 * PAD, 3, _latin1(text))
    pdf.set_text_color(120, 120, 120)
    pdf.set_font("helvetica", "", 6)
    pdf.set_xy(x + CARD_W - PAD - QR, y + PAD + QR + 1)
    pdf.cell(QR, 3, f"card {_latin1(card.card_id)}", align="C")


def _qr(pdf: FPDF, link: str, x: float, y: float) -> None:
    module = QR / size(link)
    pdf.set_fill_color(0, 0, 0)
    for row, col, length in dark_runs(link):
        # A hair wider than the module, so no white seam shows between neighbouring runs.
        pdf.rect(x + col * module, y + row * module, length * module, module + 0.01, style="F")
    pdf.link(x, y, QR, QR, link)


def _fits(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")
