"""Where things are: the repository root, and the test data kept inside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# ComfyUI 0.25's object_info as bundled with the package (what the simulator's nodes offer).
SIMULATOR_OBJECT_INFO = ROOT / "queue_manager" / "comfy" / "data" / "object_info.json"
