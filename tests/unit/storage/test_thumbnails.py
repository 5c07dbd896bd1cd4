"""Gallery thumbnails: small WebPs of any image Pillow reads, upright; anything else refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from queue_manager.storage.images import NotAnImage
from queue_manager.storage.thumbnails import thumbnail


def encoded(image: Image.Image, fmt: str, **kw: object) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    out.seek(0)
    return out


@pytest.mark.parametrize(
    ("mode", "size", "fmt", "expected"),
    [
        ("RGB", (1024, 512), "PNG", (320, 160)),
        ("RGBA", (512, 1024), "PNG", (160, 320)),
        ("RGB", (2000, 2000), "JPEG", (320, 320)),
        ("P", (100, 50), "GIF", (100, 50)),  # never enlarged
        ("I;16", (640, 640), "PNG", (320, 320)),
        ("L", (640, 320), "WEBP", (320, 160)),
    ],
)
def test_a_thumbnail_is_a_small_webp_of_the_image(
    mode: str, size: tuple[int, int], fmt: str, expected: tuple[int, int]
) -> None:
    data = thumbnail(encoded(Image.new(mode, size), fmt))
    with Image.open(io.BytesIO(data)) as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", expected)


def test_a_photo_turned_by_its_camera_is_shown_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: a portrait stored as landscape
    data = thumbnail(encoded(Image.new("RGB", (640, 320)), "JPEG", exif=exif))
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (160, 320)


@pytest.mark.parametrize("body", [b"", b"not an image", b"\x89PNG\r\n\x1a\n truncated"])
def test_what_is_not_an_image_is_refused(body: bytes) -> None:
    with pytest.raises(NotAnImage):
        thumbnail(io.BytesIO(body))
