"""Sizes as people read them."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """Decimal units, as file managers show sizes: `999 B`, `1.5 kB`, `2.0 GB`."""
    if n < 1000:
        return f"{n} B"
    value, unit = n / 1000, "kB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
