"""Another ComfyUI frontend than the pinned one, for the pages' compatibility tests:
`CW_TEST_FRONTEND_DIR` (its `static/` folder), else frontend 1.27.10 fetched once with pip
(about 11 MB, kept under the system's temp folder), else None (no package index reachable)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OLDER_VERSION = "1.27.10"


def older_frontend() -> Path | None:
    chosen = os.environ.get("CW_TEST_FRONTEND_DIR")
    if chosen:
        return Path(chosen)
    cache = Path(tempfile.gettempdir()) / f"cw-test-frontend-{OLDER_VERSION}"
    static = cache / "comfyui_frontend_package" / "static"
    if (static / "index.html").exists():
        return static
    wheels = cache / "wheel"
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
             str(wheels), f"comfyui-frontend-package=={OLDER_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    wheel = next(wheels.glob("comfyui_frontend_package-*.whl"), None)
    if wheel is None:
        return None
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith("comfyui_frontend_package/static/")]
        z.extractall(cache, members)
    return static if (static / "index.html").exists() else None
