"""Deterministic stand-in pictures: what the simulator "decodes" from a latent fingerprint.

The same key always gives the same pixels at any size (shapes are placed in relative
coordinates), so a small sampler preview looks like a thumbnail of the final image, and a
different seed or prompt gives a visibly different picture.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

# A coarse grid of random colours, upscaled smoothly, gives a soft background for free.
_GRID = 4
_SHAPES = 6


def render(key: str, width: int, height: int) -> Image.Image:
    """An RGB picture of `width` x `height` determined by `key` alone."""
    # str seeds are hashed with SHA-512 by `random`, so this is stable across processes.
    rng = random.Random(key)
    grid = Image.frombytes("RGB", (_GRID, _GRID), rng.randbytes(_GRID * _GRID * 3))
    picture = grid.resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(picture)
    for _ in range(_SHAPES):
        x0, x1 = sorted((rng.random() * width, rng.random() * width))
        y0, y1 = sorted((rng.random() * height, rng.random() * height))
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    return picture


def noise(seed: int, width: int, height: int) -> Image.Image:
    """RGB noise for `seed`: what a sampler starts from."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def thumbnail_size(width: int, height: int, longest_side: int) -> tuple[int, int]:
    """`width` x `height` scaled so that the longer side is `longest_side`."""
    scale = longest_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))
