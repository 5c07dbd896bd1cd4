"""ComfyUI 0.25's own node catalogue (`object_info` of a plain install), shipped as package data.

The queue manager shows it to the pages until a GPU has reported its real one; the simulator
starts from it. Reading it is the only thing here that touches the disk.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

BUNDLED_OBJECT_INFO = resources.files("queue_manager.comfy") / "data" / "object_info.json"


def bundled_object_info() -> dict[str, Any]:
    """A fresh copy (callers may change it). Blocking: a few MB of JSON."""
    info: dict[str, Any] = json.loads(BUNDLED_OBJECT_INFO.read_text())
    return info
