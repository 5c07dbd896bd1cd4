"""Small previews of participants' images for the instructor's gallery, with Pillow.

Synchronous and CPU-bound: call through `asyncio.to_thread`. Reads a file already opened
safely (`listing.open_file`), never a path. Anything Pillow cannot decode (not an image,
truncated, a decompression bomb) is `NotAnImage`.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from PIL import Image, ImageOps

from queue_manager.storage.images import NotAnImage

THUMBNAIL_SIZE = 320  # px, the longer side: sharp on a 2x screen at the gallery's 160 px
MEDIA_TYPE = "image/webp"


def thumbnail(file: BinaryIO, size: int = THUMBNAIL_SIZE) -> bytes:
    """A WebP no larger than `size` on either side (the first frame of an animation),
    turned upright by its EXIF orientation; closes `file`."""
    try:
        with file, Image.open(file) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            small = ImageOps.exif_transpose(img)
            small.thumbnail((size, size))
            if small.mode not in ("RGB", "RGBA"):
                small = small.convert("RGBA" if "A" in small.getbands() else "RGB")
            out = io.BytesIO()
            small.save(out, format="WEBP", quality=80, method=4)
            return out.getvalue()
    except Exception as exc:  # a participant's file: any decoding failure is theirs
        raise NotAnImage(str(exc)) from exc
