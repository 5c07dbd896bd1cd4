"""Push endpoints' use cases: the operator configures them (live), the dispatcher that calls
them keeps their status, and only one queue-manager process dispatches to each.

Each slot of an endpoint is a worker in the queue (`core.endpoints.slot_worker`), so it takes
part in the same claim, fairness, routing, leases and attempt limit as a pull worker; the
dispatcher (`queue_manager.push`) drives those slots through the workers' use cases.
"""

from __future__ import annotations

import contextlib
from typing import Any

from queue_manager.core.endpoint_status import EndpointStatus
from queue_manager.core.endpoints import EndpointConfig, slot_worker
from queue_manager.core.errors import EndpointNotFound, WorkerNotFound
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.service.parts import QueueParts


class EndpointCases(QueueParts):
    async def endpoints(self) -> list[EndpointConfig]:
        return await self._endpoints.all()

    async def add_endpoint(self, config: EndpointConfig, by: UserId) -> None:
        """Add or replace a push endpoint, live: the dispatcher picks it up within seconds.
        Slots beyond a smaller new count leave the queue (their jobs go back)."""
        old = {c.name: c for c in await self._endpoints.all()}.get(config.name)
        new = await self._endpoints.put(config)
        if old is not None:
            await self._remove_slots(old.name, range(config.slots + 1, old.slots + 1))
        self._did(
            "endpoint added" if new else "endpoint changed", "endpoint=%s url=%s kind=%s "
            "slots=%d by=%s", config.name, config.url, config.kind, config.slots, by,
        )  # fmt: skip

    async def remove_endpoint(self, name: str, by: UserId) -> None:
        """Gone at once: its slots leave the queue and the jobs they ran go back to it (the
        dispatcher then stops them on the endpoint)."""
        found = {c.name: c for c in await self._endpoints.all()}.get(name)
        if found is None or not await self._endpoints.remove(name):
            raise EndpointNotFound(name)
        await self._remove_slots(name, range(1, found.slots + 1))
        self._did("endpoint removed", "endpoint=%s by=%s", name, by)

    async def _remove_slots(self, name: str, slots: range) -> None:
        for slot in slots:
            with contextlib.suppress(WorkerNotFound):
                await self._workers.set_state(slot_worker(name, slot), "removed")
        if slots:
            await self.delete_lost_outputs()
            await self.refresh_holds()

    async def known_object_info(self, worker_id: WorkerId) -> dict[str, Any]:
        """The catalogue a slot last published (an endpoint seen before), else ComfyUI's own:
        what a slot offers until the endpoint itself answers."""
        return await self._catalog.known(worker_id)

    async def endpoint_statuses(self) -> list[EndpointStatus]:
        """Every configured endpoint's status (cold until its dispatcher says otherwise)."""
        return [await self._endpoints.status(c.name) for c in await self._endpoints.all()]

    async def endpoint_status(self, name: str) -> EndpointStatus:
        return await self._endpoints.status(name)

    async def set_endpoint_status(self, status: EndpointStatus, before: EndpointStatus) -> None:
        """The dispatcher's word on an endpoint (`before`: what it said last, for the log)."""
        if before.phase is not status.phase or before.reason != status.reason:
            self._did(
                "endpoint status", "endpoint=%s state=%s reason=%s", status.name,
                status.phase, status.reason or "-",
            )  # fmt: skip
        await self._endpoints.set_status(status)

    async def hold_endpoint(self, name: str, owner: str, seconds: float) -> bool:
        """Whether this process (`owner`) dispatches to the endpoint for the next `seconds`."""
        return await self._endpoints.hold(name, owner, seconds)

    async def let_go_of_endpoint(self, name: str, owner: str) -> None:
        await self._endpoints.let_go(name, owner)
