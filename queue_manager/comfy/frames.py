"""ComfyUI's binary WebSocket frames (PROTOCOL.md section 7), encoded and decoded.

All integers are unsigned 32-bit big-endian:
    1 PREVIEW_IMAGE                [1][format: 1 JPEG, 2 PNG][image bytes]
    3 TEXT                         [3][node-id length][node id][UTF-8 text]
    4 PREVIEW_IMAGE_WITH_METADATA  [4][metadata length][metadata JSON][image bytes]
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PREVIEW_IMAGE = 1
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4
# WEBP previews (a worker's latent previewer may send them) have no format code of their own:
# legacy type-1 frames say JPEG and the browser sniffs the bytes.
_FORMATS = {"JPEG": 1, "PNG": 2, "WEBP": 1}
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FORMAT_OF_MIME = {mime: fmt for fmt, mime in _MIME.items()}


@dataclass(frozen=True)
class Preview:
    image: bytes
    mime: str
    meta: dict[str, Any]  # empty for a type-1 frame


@dataclass(frozen=True)
class Text:
    node_id: str
    text: str


def preview_frame(image: bytes, fmt: str, meta: dict[str, Any] | None) -> bytes:
    """A preview for one socket: type 4 when it negotiated preview metadata (meta given)."""
    if meta is None:
        return struct.pack(">II", PREVIEW_IMAGE, _FORMATS[fmt]) + image
    blob = json.dumps({**meta, "image_type": _MIME[fmt]}).encode()
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(blob)) + blob + image


def text_frame(node_id: str, text: str) -> bytes:
    node = node_id.encode()
    return struct.pack(">II", TEXT, len(node)) + node + text.encode()


def parse_frame(frame: bytes) -> Preview | Text | None:
    """A received binary frame, or None for a type we do not know (ignore it)."""
    if len(frame) < 8:
        return None
    kind, second = struct.unpack_from(">II", frame)
    if kind == PREVIEW_IMAGE:
        return Preview(frame[8:], "image/png" if second == 2 else "image/jpeg", {})
    if kind == PREVIEW_IMAGE_WITH_METADATA:
        meta = json.loads(frame[8 : 8 + second])
        return Preview(frame[8 + second :], str(meta.get("image_type", "image/png")), meta)
    if kind == TEXT:
        return Text(frame[8 : 8 + second].decode(), frame[8 + second :].decode(errors="replace"))
    return None
