"""Out-of-band job start records shared by every system's worker: one line `tag time` per job,
appended to the file named by BENCH_RECORD (no extra Redis round trip inside the job)."""

from __future__ import annotations

import os
import time
from typing import TextIO

_out: TextIO | None = None


def mark(tag: str) -> None:
    global _out
    if _out is None:
        _out = open(os.environ["BENCH_RECORD"], "a", buffering=1)  # noqa: SIM115
    _out.write(f"{tag} {time.time()!r}\n")


def read(path: str) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open(path) as f:
            for line in f:
                tag, _, t = line.strip().partition(" ")
                if t:
                    out[tag] = float(t)
    except FileNotFoundError:
        pass
    return out
