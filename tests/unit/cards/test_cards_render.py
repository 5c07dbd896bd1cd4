"""The printed cards: a PDF of 8 cards per A4 page whose QR codes read back as the cards' links,
and a standalone HTML sheet with the same cards."""

from __future__ import annotations

import io
import re

import pypdfium2
import pytest
import zxingcpp

from queue_manager.cards.pdf import cards_pdf
from queue_manager.cards.sheet import ASK, sheet_html
from queue_manager.core.accounts import Role
from queue_manager.core.cards import IssuedCard, PrintedCard, new_card_token, printed
from queue_manager.core.ids import UserId

BASE = "https://workshop.example/"


def cards(n: int) -> list[PrintedCard]:
    return [
        printed(
            IssuedCard(
                UserId(f"user{i:03d}"),
                Role.PARTICIPANT,
                f"c{i:05d}",
                new_card_token(),
                1_800_000_000.0,
                None if i % 3 == 0 else f"password-{i:03d}",
            ),
            BASE,
        )
        for i in range(1, n + 1)
    ]


def pdf_pages(data: bytes) -> list[set[str]]:
    """The QR codes found on each page, rendered by PDFium at 150 dpi."""
    document = pypdfium2.PdfDocument(io.BytesIO(data))
    try:
        return [
            {code.text for code in zxingcpp.read_barcodes(page.render(scale=150 / 72).to_pil())}
            for page in document
        ]
    finally:
        document.close()


@pytest.mark.parametrize(("n", "pages"), [(1, 1), (8, 1), (9, 2), (20, 3)])
def test_the_pdf_holds_8_cards_a_page_and_every_qr_code_reads_back_as_its_link(
    n: int, pages: int
) -> None:
    printed_cards = cards(n)
    data = cards_pdf(printed_cards)
    assert data.startswith(b"%PDF-")
    found = pdf_pages(data)
    assert len(found) == pages
    assert set().union(*found) == {c.link for c in printed_cards}
    assert all(len(page) == 8 for page in found[:-1])


def test_the_html_sheet_holds_every_card_with_its_link_and_password() -> None:
    printed_cards = cards(9)
    page = sheet_html(printed_cards)
    assert page.startswith("<!doctype html>")
    assert page.count('<section class="page">') == 2
    assert page.count('<article class="card"') == 9
    assert re.findall(r'<a class="qr" href="([^"]+)"', page) == [c.link for c in printed_cards]
    assert page.count("<svg") == 9
    assert "password-001" in page and page.count(ASK) == 3
    assert "src=" not in page and "<link" not in page and "@import" not in page  # all inline


def test_what_a_card_prints_is_escaped() -> None:
    card = cards(1)[0]
    odd = PrintedCard(card.user, card.role, card.url, '<b>"&', card.link, "<i>", card.expires)
    page = sheet_html([odd])
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;&quot;&amp;" in page


def test_a_password_the_pdf_fonts_cannot_print_says_ask_the_instructor() -> None:
    card = cards(1)[0]
    odd = PrintedCard(card.user, card.role, card.url, "пароль-пароль", card.link, "x", 1.0)
    document = pypdfium2.PdfDocument(io.BytesIO(cards_pdf([odd])))
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert ASK in text and "user001" in text
