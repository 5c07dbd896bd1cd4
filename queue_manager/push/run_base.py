"""What a run of one job on an endpoint holds, whatever the kind, and the two phases every kind
tells the participant once: "GPU starting" (a cold start) and "started"."""

from __future__ import annotations

import asyncio

from queue_manager.core.endpoints import EndpointConfig
from queue_manager.core.events import EventType
from queue_manager.push.client import EndpointClient
from queue_manager.push.handle import JobHandle
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.settings import Settings

# A call not answered within this is probably held by a starting replica.
HELD_FOR = 3.0


class RunBase:
    # Whether the slot renews the job's lease while it runs (see `kinds.EndpointRun`).
    renews_lease = True

    def __init__(
        self,
        handle: JobHandle,
        client: EndpointClient,
        monitor: EndpointMonitor,
        settings: Settings,
    ) -> None:
        self.handle = handle
        self.client = client
        self.config: EndpointConfig = client.config
        self.monitor = monitor
        self.settings = settings
        self.id: str = handle.job.id
        self._said_starting = False
        self._started = False
        self.executed = asyncio.Event()  # the endpoint is done with it (kinds.EndpointRun)
        self.posted = asyncio.Event()  # in the endpoint's own queue (kinds that have one)
        self.behind = False  # posted behind another job of the slot's (prefetch)

    @property
    def started(self) -> bool:
        """The endpoint began executing it (as far as the slot has heard)."""
        return self._started

    async def take_back(self) -> bool:
        """Take it out of the endpoint's queue before it starts; True when it is out. A kind
        without a queue of its own (no prefetch) keeps what it was given."""
        return False

    async def say_starting(self) -> None:
        """The participant reads "GPU starting, usually about N s" (once, before the run)."""
        if not self._said_starting and not self._started:
            self._said_starting = True
            await self.handle.tell(EventType.JOB_PHASE, {"detail": self.monitor.starting_detail})

    async def held_after(self, since: float) -> None:
        """A call held unanswered this long waits for the endpoint to start (a balancer holds
        requests while a replica boots): the endpoint is starting, and the participant told.
        Run as a task beside the call, cancelled when it answers."""
        await asyncio.sleep(HELD_FOR)
        await self.monitor.down("no answer yet: starting", since=since)
        await self.say_starting()

    async def started_now(self) -> None:
        if not self._started:
            self._started = True
            await self.handle.tell(EventType.JOB_STARTED, {})
