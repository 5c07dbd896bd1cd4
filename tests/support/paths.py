"""Where things are: the repository root, and the test data kept inside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# The simulator's own copy of ComfyUI's object_info (what its nodes offer).
SIMULATOR_OBJECT_INFO = ROOT / "worker" / "simulator" / "data" / "object_info.json"
