"""QR codes of login links (segno: pure Python, no image library)."""

from __future__ import annotations

from collections.abc import Iterator

import segno

# Medium error correction: a creased or smudged card still scans; segno raises it further
# where the symbol size allows.
ERROR = "m"


def qr_svg(link: str, title: str) -> str:
    """An inline `<svg>` that scales to its box (viewBox, no fixed size)."""
    code = segno.make(link, error=ERROR)
    svg: str = code.svg_inline(border=2, omitsize=True, title=title, svgclass="qr-code")
    return svg


def dark_runs(link: str) -> Iterator[tuple[int, int, int]]:
    """The symbol as horizontal runs of dark modules: (row, first column, length), no border."""
    code = segno.make(link, error=ERROR)
    for row, bits in enumerate(code.matrix_iter(scale=1, border=0)):
        start = None
        for col, dark in enumerate([*bits, False]):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                yield row, start, col - start
                start = None


def size(link: str) -> int:
    """Modules per side (no border)."""
    width, _ = segno.make(link, error=ERROR).symbol_size(scale=1, border=0)
    return int(width)
