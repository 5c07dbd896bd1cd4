"""The push dispatcher of one queue-manager process: it follows the endpoints the operator
configures (live: added, changed, removed) and runs the slots of each endpoint it holds. Only
one process holds an endpoint at a time (a lease in Redis), so replicas of the queue manager
never dispatch to one endpoint twice; when the holder dies another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import uuid

from queue_manager.comfy.remote import offer_of
from queue_manager.core.clock import Clock
from queue_manager.core.endpoints import EndpointConfig, EndpointKind, slot_worker
from queue_manager.core.requirements import Capabilities
from queue_manager.push.client import EndpointClient, EndpointDown, EndpointError
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.slot import Slot
from queue_manager.service.queue import STORE_OUTAGES, QueueService
from queue_manager.service.tasks import reraise_if_cancelled
from queue_manager.settings import Settings

log = logging.getLogger(__name__)

# How often the configuration is read again, and how long a hold on an endpoint lasts (renewed
# at each read, so a dead process's endpoints are taken over within this).
FOLLOW_SECONDS = 2.0
HOLD_SECONDS = 15.0
# The kinds whose runs are built (`kinds.new_run`); `agent` endpoints serve the catalogue at
# ComfyUI's path too.
# Kinds that tell their node catalogue (RunPod's API does not: its slots offer ComfyUI's own
# nodes, or what an earlier catalogue of the same name said).
_TELL_CATALOGUE = frozenset({EndpointKind.COMFYUI, EndpointKind.AGENT})


class PushDispatcher:
    def __init__(self, service: QueueService, settings: Settings, clock: Clock) -> None:
        self._service = service
        self._settings = settings
        self._clock = clock
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, tuple[EndpointConfig, asyncio.Task[None], EndpointRunner]] = {}

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._follow()
                except STORE_OUTAGES as exc:
                    reraise_if_cancelled()
                    log.warning("push dispatcher cannot read the endpoints: %s", exc)
                reraise_if_cancelled()  # a cancellation a Redis call swallowed (seen in tests)
                await asyncio.sleep(FOLLOW_SECONDS)
        finally:
            await asyncio.shield(self._stop_all())

    async def _follow(self) -> None:
        configs = {c.name: c for c in await self._service.endpoints()}
        for name in [n for n in self._running if n not in configs]:
            await self._stop(name)
        for name, config in configs.items():
            held = await self._service.hold_endpoint(name, self._owner, HOLD_SECONDS)
            running = self._running.get(name)
            # Only its slot count changed: the running jobs run on.
            if held and running is not None and running[0] != config and running[2].resize(config):
                self._running[name] = (config, running[1], running[2])
                continue
            if not held or (running is not None and running[0] != config):
                await self._stop(name)
                running = None
            if held and (running is None or running[1].done()):
                self._start(config)

    def _start(self, config: EndpointConfig) -> None:
        runner = EndpointRunner(self._service, self._settings, self._clock, config)
        task = asyncio.create_task(runner.run(), name=f"endpoint {config.name}")
        self._running[config.name] = (config, task, runner)
        log.info("dispatching to endpoint=%s (%s, %d slots)", config.name, config.kind,
                 config.slots)  # fmt: skip

    async def _stop(self, name: str) -> None:
        found = self._running.pop(name, None)
        if found is None:
            return
        found[1].cancel()
        await asyncio.wait({found[1]})
        with contextlib.suppress(*STORE_OUTAGES):
            await self._service.let_go_of_endpoint(name, self._owner)

    async def _stop_all(self) -> None:
        for name in list(self._running):
            await self._stop(name)


class EndpointRunner:
    """One endpoint: its catalogue first (which also wakes a cold one), then its slots."""

    def __init__(
        self, service: QueueService, settings: Settings, clock: Clock, config: EndpointConfig
    ) -> None:
        self._service = service
        self._settings = settings
        self._clock = clock
        self.config = config
        self._slots: list[Slot] = []
        self._group: asyncio.TaskGroup | None = None

    def resize(self, config: EndpointConfig) -> bool:
        """Take a new slot count without stopping the running jobs (False: something else
        changed too, or the slots are not running yet: restart). Slots beyond a smaller count
        were already removed from the queue (their jobs requeued) and stop by themselves."""
        if dataclasses.replace(self.config, slots=config.slots) != config or self._group is None:
            return False
        model = self._slots[0]
        caps, object_info = model.offering
        for n in range(len(self._slots) + 1, config.slots + 1):
            slot = Slot(self._service, self._settings, model.client, model.monitor,
                        object_info, caps, n)  # fmt: skip
            self._slots.append(slot)
            self._group.create_task(slot.run(), name=f"slot {slot.worker}")
        self._slots = self._slots[: config.slots]
        self.config = config
        log.info("endpoint=%s now has %d slot(s)", config.name, config.slots)
        return True

    async def run(self) -> None:
        client = EndpointClient(self.config, self._settings.endpoint_request_seconds)
        try:
            monitor = await self._monitor()
            # The slots take jobs at once, on what the endpoint last told us (or ComfyUI's
            # own nodes): a scaled-to-zero endpoint is woken by the job itself, and its
            # participant reads "GPU starting" meanwhile, not "waiting for a GPU worker".
            provisional = await self._service.known_object_info(slot_worker(self.config.name, 1))
            caps = Capabilities(offer_of(provisional).node_types, None)
            slots = [
                Slot(self._service, self._settings, client, monitor, provisional, caps, n)
                for n in range(1, self.config.slots + 1)
            ]
            self._slots = slots
            async with asyncio.TaskGroup() as group:
                self._group = group
                for slot in slots:
                    group.create_task(slot.run(), name=f"slot {slot.worker}")
                if self.config.kind in _TELL_CATALOGUE:
                    group.create_task(self._learn(client, monitor, slots), name="catalogue")
        finally:
            await client.aclose()

    async def _monitor(self) -> EndpointMonitor:
        status = await self._service.endpoint_status(self.config.name)
        return EndpointMonitor(self._service, status, self._clock)

    async def _learn(
        self, client: EndpointClient, monitor: EndpointMonitor, slots: list[Slot]
    ) -> None:
        """The endpoint's own catalogue: published with its first slot (the participants' pages
        list its nodes), and what each slot offers from its next claim on."""
        object_info = await self._catalogue(client, monitor)
        offer = offer_of(object_info)
        caps = Capabilities(offer.node_types, offer.models)
        raw = json.dumps(object_info, separators=(",", ":")).encode()
        await self._service.publish_object_info(slots[0].worker, raw, False)
        for slot in slots:
            slot.offer(caps, object_info)

    async def _catalogue(
        self, client: EndpointClient, monitor: EndpointMonitor
    ) -> dict[str, object]:
        """The endpoint's `object_info`, asked until it answers (a cold start, a restart)."""
        backoff = 1.0
        started = self._clock()
        while True:
            try:
                info = await client.object_info()
                await monitor.answered()
                return info
            except EndpointDown as exc:
                if self._clock() - started < self.config.cold_start_timeout:
                    await monitor.down(str(exc))
                else:
                    await monitor.failing(f"no answer within its cold-start timeout: {exc}")
            except EndpointError as exc:
                await monitor.failing(f"its object_info: {exc}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
