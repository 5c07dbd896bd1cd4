"""One serverless simulator replica: a container that is cold (not running), starting (booting
for its cold-start time), warm (a simulator app served on an internal loopback port) or
stopping. Each start is a fresh simulator: history, queue and sockets die with it, as they do
with a container scaled to zero; its folders (or the shared mounts) stay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from worker.simulator.runtime import SimulatorConfig
from worker.simulator.server import Simulator, create_app
from worker.simulator.serving import ServedApp

log = logging.getLogger(__name__)


class ReplicaState(StrEnum):
    COLD = "cold"
    STARTING = "starting"
    WARM = "warm"
    STOPPING = "stopping"


class ReplicaStopped(Exception):
    """The replica was stopped (killed) while a caller waited for it to be ready."""

    def __init__(self, index: int) -> None:
        super().__init__(f"replica {index} was stopped while starting")
        self.index = index


class Replica:
    def __init__(
        self,
        index: int,
        base: Path,
        config: SimulatorConfig,
        cold_start: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.base = base
        self.config = config
        self.cold_start = cold_start
        self.clock = clock
        self.state = ReplicaState.COLD
        self.retired = False
        self.cold_starts = 0
        self.open = 0  # requests and sockets in flight, jobs running: never idle meanwhile
        self.last_used = clock()
        self._served: ServedApp | None = None
        self._simulator: Simulator | None = None
        self._boot: asyncio.Task[None] | None = None
        self._halt: asyncio.Task[None] | None = None
        self._earlier_prompts: list[str] = []  # accepted by earlier lives of this replica

    # -- lifecycle --------------------------------------------------------------------------

    def begin_start(self) -> None:
        """Start booting if cold; nothing if it is already starting or warm, or retired."""
        if self.state is ReplicaState.COLD and not self.retired:
            self.state = ReplicaState.STARTING
            self.cold_starts += 1
            self._boot = asyncio.create_task(self._run_boot(), name=f"replica-{self.index}-boot")
            self._boot.add_done_callback(self._note_boot_failure)

    async def ready(self) -> None:
        """Start it if need be and return once it is warm; ReplicaStopped if it is stopped
        (killed) meanwhile or retired. A stopping replica is let stop, then started again."""
        while self.state is not ReplicaState.WARM:
            if self.state is ReplicaState.STOPPING and self._halt is not None:
                await asyncio.wait({self._halt})
            self.begin_start()
            boot = self._boot
            if self.retired or boot is None:
                raise ReplicaStopped(self.index)
            await asyncio.wait({boot})  # a caller that gives up leaves the boot going
            if boot.cancelled():
                raise ReplicaStopped(self.index)
            boot.result()  # a boot that failed fails its callers

    @property
    def url(self) -> str | None:
        return self._served.url if self._served and self.state is ReplicaState.WARM else None

    async def retire(self) -> None:
        """Stop it for good: nothing starts it again (its pool is stopping)."""
        self.retired = True
        await self.stop("stopped with its pool")

    async def stop(self, why: str = "stopped") -> None:
        """Stop it now, whatever it is doing: a running prompt is lost, sockets close."""
        if self._boot is not None and not self._boot.done():
            self._boot.cancel()
            await asyncio.wait({self._boot})
        if self.state is ReplicaState.WARM:
            self.state = ReplicaState.STOPPING
            halt = self._run_halt(why)
            self._halt = asyncio.create_task(halt, name=f"replica-{self.index}-halt")
        if self._halt is not None:
            await asyncio.wait({self._halt})

    async def _run_boot(self) -> None:
        started = self.clock()
        try:
            await asyncio.sleep(self.cold_start)  # the container's boot, not a wait for a state
            app = create_app(self.base, self.config)
            self._served = await ServedApp.start(app)
        except BaseException:
            self.state = ReplicaState.COLD
            raise
        self._simulator = app.state.simulator
        self.state = ReplicaState.WARM
        self.last_used = self.clock()
        log.info("replica %d warm after %.2fs", self.index, self.clock() - started)

    def _note_boot_failure(self, boot: asyncio.Task[None]) -> None:
        """Said here, as a refused request starts a boot that nobody waits for."""
        if not boot.cancelled() and boot.exception() is not None:
            log.error("replica %d could not start: %r", self.index, boot.exception())

    async def _run_halt(self, why: str) -> None:
        self._earlier_prompts = self.prompts()
        served, self._served, self._simulator = self._served, None, None
        try:
            if served is not None:
                await served.stop()
        finally:
            self.state = ReplicaState.COLD
            log.info("replica %d %s", self.index, why)

    # -- use --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def in_use(self) -> AsyncIterator[None]:
        """Held by whoever talks to the replica (a proxied request or socket, a job)."""
        self.open += 1
        self.last_used = self.clock()
        try:
            yield
        finally:
            self.open -= 1
            self.last_used = self.clock()

    def busy(self) -> bool:
        sim = self._simulator
        return self.open > 0 or (sim is not None and sim.state.queue_remaining() > 0)

    def idle_for(self) -> float:
        """Seconds since it was last in use or running a prompt (0 while it is)."""
        if self.busy():
            self.last_used = self.clock()
        return self.clock() - self.last_used

    # -- what it did ------------------------------------------------------------------------

    def prompts(self) -> list[str]:
        """Every prompt id it accepted, in every life, in submission order."""
        sim = self._simulator
        if sim is None:
            return list(self._earlier_prompts)
        state = sim.state
        items = [*state.pending, *([state.running] if state.running else [])]
        items += [done.item for done in state.history.values()]
        now = [item.prompt_id for item in sorted(items, key=lambda item: item.seq)]
        return self._earlier_prompts + now

    def report(self) -> dict[str, Any]:
        sim = self._simulator
        running = sim.state.running if sim is not None else None
        return {
            "index": self.index,
            "state": self.state.value,
            "url": self.url,
            "cold_starts": self.cold_starts,
            "open": self.open,
            "running": running.prompt_id if running is not None else None,
            "queue_remaining": sim.state.queue_remaining() if sim is not None else 0,
            "prompts": self.prompts(),
        }
