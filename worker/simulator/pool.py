"""The replicas of a serverless simulator: their folders, the round-robin turn, and the reaper
that stops a replica left idle (no request, socket, job or prompt) for `idle_stop` seconds."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

from worker.simulator.replica import Replica, ReplicaState
from worker.simulator.runtime import SimulatorConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    replicas: int = 2
    cold_start: float = 0.0  # seconds a cold replica takes to boot
    idle_stop: float | None = None  # seconds idle before a replica stops; None: never
    shared_inputs: Path | None = None  # every replica's input folder (a network mount)
    shared_outputs: Path | None = None  # every replica's output folder

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError("a balanced simulator needs at least one replica")
        if self.cold_start < 0:
            raise ValueError("the cold start cannot be negative")
        if self.idle_stop is not None and self.idle_stop <= 0:
            raise ValueError("the idle stop must be more than 0 seconds")


class RoundRobin:
    """Turns 0, 1, ..., n-1, 0, ..."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.turn = 0

    def next(self) -> int:
        index, self.turn = self.turn, (self.turn + 1) % self.n
        return index


class ReplicaPool:
    def __init__(self, data: Path, config: SimulatorConfig, options: PoolOptions) -> None:
        self.options = options
        replica_config = dataclasses.replace(
            config,
            input_directory=options.shared_inputs or config.input_directory,
            output_directory=options.shared_outputs or config.output_directory,
        )
        self.replicas = [
            Replica(k, data / f"replica-{k}", replica_config, options.cold_start)
            for k in range(options.replicas)
        ]
        self._turns = RoundRobin(options.replicas)
        self._reaper: asyncio.Task[None] | None = None

    def next(self) -> Replica:
        return self.replicas[self._turns.next()]

    def __getitem__(self, index: int) -> Replica:
        return self.replicas[index]

    async def start(self) -> None:
        """Without a cold start every replica is up at once (as N plain simulators)."""
        if self.options.cold_start == 0:
            await asyncio.gather(*(replica.ready() for replica in self.replicas))
        if self.options.idle_stop is not None:
            self._reaper = asyncio.create_task(self._reap(self.options.idle_stop), name="reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.wait({self._reaper})
        await asyncio.gather(*(replica.retire() for replica in self.replicas))

    async def _reap(self, idle_stop: float) -> None:
        tick = min(idle_stop / 4, 0.1)
        while True:
            await asyncio.sleep(tick)  # a periodic look, as a container platform's scaler
            for replica in self.replicas:
                if replica.state is ReplicaState.WARM and replica.idle_for() >= idle_stop:
                    try:
                        await replica.stop(f"stopped after {idle_stop}s idle")
                    except Exception:  # one replica's trouble never stops the reaper
                        log.exception("replica %d did not stop cleanly", replica.index)

    def report(self) -> dict[str, Any]:
        replicas = [replica.report() for replica in self.replicas]
        return {
            "replicas": replicas,
            "cold_starts": sum(r["cold_starts"] for r in replicas),
            "warm": [r["index"] for r in replicas if r["state"] == ReplicaState.WARM],
        }
