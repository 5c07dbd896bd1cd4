"""One job the pull agent holds, from its claim until its outcome is reported: where it is on
ComfyUI (posted, started, done), whether the queue took it away or wants it back, and which of
its outputs were copied."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from queue_manager.comfy.object_info import output_nodes
from queue_manager.comfy.remote import OutputRef
from worker.manager_client import Assignment


@dataclass(eq=False)
class Held:
    """One job this agent holds, from its claim until its outcome is reported."""

    job: Assignment
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # cancelled or given away
    back: bool = False  # the queue wants it back (it was handed early)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # lost or back: look now
    posted: asyncio.Event = field(default_factory=asyncio.Event)  # in ComfyUI's queue (or over)
    ran: asyncio.Event = field(default_factory=asyncio.Event)  # ComfyUI is done with it
    started: bool = False  # ComfyUI began executing it
    behind: bool = False  # posted while another job of ours was on ComfyUI
    recv: asyncio.Future[Any] | None = None  # a pending read of its /ws

    def on_comfy(self) -> bool:
        """Staged, waiting in ComfyUI's queue or running: it holds a place on the GPU."""
        return not self.ran.is_set()

    def lose(self) -> None:
        self.lost.set()
        self.wake.set()

    def want_back(self) -> None:
        if not self.started:
            self.back = True
            self.wake.set()


@dataclass
class Outputs:
    """One job's copied outputs: which files are done (an output announced by `executed` is
    listed again by the history) and which nodes were announced."""

    announced: set[str] = field(default_factory=set)
    _copied: set[tuple[str, str, str]] = field(default_factory=set)

    def first_time(self, ref: OutputRef) -> bool:
        key = (ref.filename, ref.subfolder, ref.type)
        if key in self._copied:
            return False
        self._copied.add(key)
        return True

    def all_announced(self, prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> bool:
        """Whether `executed` announced every output node of the prompt (ComfyUI announces a
        cached one too), so its history entry holds nothing more. False when the catalogue
        knows none of them: only the history can tell then."""
        wanted = output_nodes(prompt, object_info)
        return bool(wanted) and self.announced.issuperset(wanted)
