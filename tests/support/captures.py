"""The recorded ComfyUI exchanges kept in `tests/data/comfyui-reference` (see its README)."""

from __future__ import annotations

import json
from typing import Any

from tests.support.paths import DATA

REFERENCE = DATA / "comfyui-reference"
# One JSON file per HTTP exchange or WebSocket session with a real ComfyUI 0.25.0.
CAPTURES = REFERENCE / "captures" / "comfyui-0.25.0"
# Every request the official frontend made to that server, in order, per frontend version.
FRONTEND_SESSIONS = REFERENCE / "frontend"


def capture(name: str) -> Any:
    """One capture of ComfyUI 0.25.0, parsed afresh (callers may change what they get)."""
    return json.loads((CAPTURES / name).read_text())


def frontend_session(name: str) -> Any:
    return json.loads((FRONTEND_SESSIONS / name).read_text())
