"""Image work for `/view` and `/upload/mask`, with Pillow, exactly as ComfyUI's server does it.

The functions are synchronous and CPU-bound: call them through `asyncio.to_thread`. They read
from files already opened safely (see `listing.open_file`), never from paths. Whatever goes
wrong while decoding a participant's file (not an image, truncated, a decompression bomb,
sizes that do not match) is one error, NotAnImage, which the API answers with a 400.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Literal

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from queue_manager.comfy.view import Preview


class NotAnImage(ValueError):
    """The file cannot be decoded, or the mask does not fit the image."""


def render(file: BinaryIO, how: Preview | Literal["rgb", "a"]) -> tuple[bytes, str]:
    """The re-encoded image `/view` answers and its media type; closes `file`.

    * Preview: Pillow's `save(format, quality)`, converted to RGB first for jpeg or
      `channel=rgb`.
    * `"rgb"`: a PNG without the alpha channel.
    * `"a"`: a PNG (RGBA, black) carrying only the alpha channel; opaque for images without
      one (ComfyUI looks at RGBA images only).
    """
    try:
        with file, Image.open(file) as img:
            out = io.BytesIO()
            if isinstance(how, Preview):
                image = img.convert("RGB") if how.to_rgb else img
                image.save(out, format=how.format, quality=how.quality)
                return out.getvalue(), how.media_type
            if how == "rgb":
                if img.mode == "RGBA":
                    r, g, b, _ = img.split()
                    rgb = Image.merge("RGB", (r, g, b))
                else:
                    rgb = img.convert("RGB")
                rgb.save(out, format="PNG")
            else:
                alpha = img.split()[3] if img.mode == "RGBA" else Image.new("L", img.size, 255)
                alpha_img = Image.new("RGBA", img.size)
                alpha_img.putalpha(alpha)
                alpha_img.save(out, format="PNG")
            return out.getvalue(), "image/png"
    except Exception as exc:  # a participant's file: any decoding failure is theirs
        raise NotAnImage(str(exc)) from exc


def apply_mask(original: BinaryIO, mask: BinaryIO, out: BinaryIO) -> None:
    """Write `original` with the alpha channel of `mask`, as PNG, keeping its text chunks
    (the workflow ComfyUI embeds): what `/upload/mask` stores. Does not close the files."""
    try:
        with Image.open(original) as source:
            metadata = PngInfo()
            for key, value in getattr(source, "text", {}).items():
                metadata.add_text(key, value)
            image = source.convert("RGBA")
        with Image.open(mask) as mask_image:
            alpha = mask_image.convert("RGBA").getchannel("A")
        if alpha.size != image.size:
            raise NotAnImage(f"the mask is {alpha.size}, the image {image.size}")
        image.putalpha(alpha)
        image.save(out, format="PNG", compress_level=4, pnginfo=metadata)
    except NotAnImage:
        raise
    except Exception as exc:  # a participant's file: any decoding failure is theirs
        raise NotAnImage(str(exc)) from exc
