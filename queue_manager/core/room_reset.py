"""What `comfy-workshop room reset` clears for the next workshop, and what it keeps: pure.

The parts of a room: the participants' `outputs`, `inputs` (their uploads, and scratch files),
`workflows` (their ComfyUI user data: saved workflows and settings, so the next person starts
as a newcomer does), the `history` of finished jobs, and the participants' `accounts`.
By default accounts are kept (the same login cards can be handed out again; every session is
ended); the instructor's published workflows and instructor accounts are never touched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Part(enum.StrEnum):
    OUTPUTS = "outputs"
    INPUTS = "inputs"
    WORKFLOWS = "workflows"
    HISTORY = "history"
    ACCOUNTS = "accounts"


DEFAULT_KEEP = frozenset({Part.ACCOUNTS})
NONE = "none"
# The folders below DATA (each holding a folder per user) that a part's clearing empties.
FOLDERS: dict[Part, tuple[str, ...]] = {
    Part.OUTPUTS: ("outputs",),
    Part.INPUTS: ("inputs", "temp"),
    Part.WORKFLOWS: ("userdata",),
}


class BadKeep(ValueError):
    """A `--keep` list naming something that is not a part."""


def parse_keep(text: str | None) -> frozenset[Part]:
    """`--keep accounts,workflows` (spaces and case ignored); `none` keeps nothing; no
    `--keep`: the default (accounts)."""
    if text is None:
        return DEFAULT_KEEP
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == [NONE]:
        return frozenset()
    known = {p.value for p in Part}
    wrong = [n for n in names if n not in known]
    if wrong or not names:
        choices = ", ".join(sorted(known))
        raise BadKeep(f"--keep {text!r}: say which of {choices} to keep (comma-separated), or none")
    return frozenset(Part(n) for n in names)


def cleared(keep: Iterable[Part]) -> tuple[Part, ...]:
    """The parts cleared, in the order the reset clears them."""
    kept = set(keep)
    return tuple(p for p in Part if p not in kept)


def folders(keep: Iterable[Part]) -> tuple[str, ...]:
    """The folders below DATA whose participants' folders are removed."""
    return tuple(top for part in cleared(keep) for top in FOLDERS.get(part, ()))


def summary(keep: Iterable[Part]) -> str:
    """`clears outputs, inputs, workflows, history; keeps accounts`."""
    gone = ", ".join(cleared(keep)) or "nothing"
    kept = ", ".join(p for p in Part if p in set(keep)) or "nothing"
    return f"clears {gone}; keeps {kept}"
