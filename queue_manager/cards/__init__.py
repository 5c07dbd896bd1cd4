"""Printable login cards (pure: cards in, a page or a PDF out; no I/O). One renderer for the
`cards` command and the dashboard's cards page: `sheet` (HTML, the QR code as inline SVG, a
print layout of 8 cards per A4 page) and `pdf` (the same cards, 8 per A4 page, cut lines)."""
