"""The workshop extension's status for one participant: their live jobs with true positions
and phases, the instructor's broadcast, and whether the room is paused."""

from __future__ import annotations

import time
from typing import Any

from queue_manager.core.ids import UserId
from queue_manager.core.phases import phase
from queue_manager.service.queue import QueueService

# Finished jobs stay in the status this long, so the page can say "Done" or "Cancelled by the
# instructor" after the fact.
RECENT_SECONDS = 30.0


async def workshop_status(service: QueueService, user: UserId) -> dict[str, Any]:
    now = time.time()
    jobs = [
        j
        for j in await service.user_jobs(user)
        if not j.status.is_final or (j.finished_at or 0) > now - RECENT_SECONDS
    ]
    positions = await service.positions() if jobs else {}
    room = await service.control.room()
    return {
        "jobs": [phase(j, positions.get(j.id), room.paused) for j in jobs],
        "broadcast": room.broadcast,
        "paused": room.paused,
    }
