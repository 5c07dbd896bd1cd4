"""ComfyUI's binary WebSocket frames, byte for byte as recorded."""

from __future__ import annotations

import json
import struct

from queue_manager.comfy.frames import Preview, Text, parse_frame, preview_frame, text_frame


def test_legacy_preview_frame_layout() -> None:
    frame = preview_frame(b"\x89PNGdata", "PNG", None)
    assert frame[:8].hex() == "0000000100000002"  # as in ws_run_binary_frames_legacy
    assert parse_frame(frame) == Preview(b"\x89PNGdata", "image/png", {})


def test_metadata_preview_frame_round_trips() -> None:
    meta = {
        "node_id": "2",
        "prompt_id": "p",
        "display_node_id": "2",
        "parent_node_id": None,
        "real_node_id": "2",
    }
    frame = preview_frame(b"\xff\xd8jpeg", "JPEG", meta)
    kind, length = struct.unpack_from(">II", frame)
    assert kind == 4
    assert json.loads(frame[8 : 8 + length])["image_type"] == "image/jpeg"
    parsed = parse_frame(frame)
    assert isinstance(parsed, Preview)
    assert parsed.image == b"\xff\xd8jpeg"
    assert parsed.meta["node_id"] == "2"


def test_text_frame_round_trips() -> None:
    frame = text_frame("7", "width: 40, height: 24\n batch size: 3")
    assert frame[:9] == struct.pack(">II", 3, 1) + b"7"
    assert parse_frame(frame) == Text("7", "width: 40, height: 24\n batch size: 3")


def test_unknown_or_short_frames_are_ignored() -> None:
    assert parse_frame(b"\x00\x00") is None
    assert parse_frame(struct.pack(">II", 9, 0)) is None
