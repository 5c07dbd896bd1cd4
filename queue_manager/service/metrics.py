"""Prometheus metrics (prefix `comfy_workshop_`), one registry per app.

Gauges that describe the room (jobs by state, queue depth per lane, workers by state) are read
from Redis at each scrape, so every queue-manager process reports the same room. Histograms
and counters are this process's own observations: waits and run times from the event stream
it reads, the lag of that stream, and the output bytes its worker API stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from queue_manager.core.events import EventType
from queue_manager.core.jobs import LANES, JobStatus
from queue_manager.core.scheduling import QueueSnapshot
from queue_manager.core.workers import WorkerInfo, WorkerState
from queue_manager.service.fanout import EventHub, Overflowed

log = logging.getLogger(__name__)

_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_RUN_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # This process's memory, CPU and open files (`process_resident_memory_bytes`, ...):
        # what `comfy-workshop rehearse` watches for growth under load.
        ProcessCollector(registry=registry)
        p = "comfy_workshop_"
        self.jobs = Gauge(p + "jobs", "Jobs by state.", ["state"], registry=registry)
        self.queue_depth = Gauge(
            p + "queue_depth", "Queued jobs per priority lane.", ["lane"], registry=registry
        )
        self.workers = Gauge(p + "workers", "Workers by state.", ["state"], registry=registry)
        self.websocket_clients = Gauge(
            p + "websocket_clients",
            "Open WebSockets (participant pages and dashboards) of this process.",
            registry=registry,
        )
        self.wait = Histogram(
            p + "wait_seconds",
            "Time from queued to claimed by a worker.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.run = Histogram(
            p + "run_seconds",
            "Time from claimed to finished (completed or failed).",
            buckets=_RUN_BUCKETS,
            registry=registry,
        )
        self.event_lag = Histogram(
            p + "event_lag_seconds",
            "Time from an event's write to its reading by this process.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.actions = Counter(
            p + "actions",
            "Use cases this process carried out (submitted, claimed, cancelled, ...).",
            ["action"],
            registry=registry,
        )
        self._actions: dict[str, Counter] = {}
        self.output_bytes = Counter(
            p + "output_bytes", "Output bytes copied from workers.", registry=registry
        )

    def count(self, action: str) -> None:
        """One more of a use case (its labelled child is looked up once, then kept)."""
        child = self._actions.get(action)
        if child is None:
            child = self._actions[action] = self.actions.labels(action)
        child.inc()

    def render(
        self,
        counts: dict[str, int],
        snapshot: QueueSnapshot,
        workers: list[WorkerInfo],
        sockets: int,
    ) -> bytes:
        """Set the room gauges from what was just read, then the text exposition."""
        for status in JobStatus:
            self.jobs.labels(status.value).set(counts.get(status.value, 0))
        depth = {lane.lane: sum(len(u.jobs) for u in lane.users) for lane in snapshot.lanes}
        for lane in LANES:
            self.queue_depth.labels(lane.value).set(depth.get(lane, 0))
        for state in WorkerState:
            self.workers.labels(state.value).set(sum(1 for w in workers if w.state is state))
        self.websocket_clients.set(sockets)
        return generate_latest(self.registry)

    async def follow(self, hub: EventHub) -> None:
        """Observe waits, run times and stream lag from the event stream, until cancelled."""
        while True:
            with hub.subscribe(None) as sub, contextlib.suppress(Overflowed):
                while True:
                    event = await sub.get()
                    self.event_lag.observe(max(0.0, time.time() - event.at))
                    seconds = event.data.get(
                        "wait" if event.type is EventType.JOB_CLAIMED else "ran"
                    )
                    if not isinstance(seconds, float | int):
                        continue
                    if event.type is EventType.JOB_CLAIMED:
                        self.wait.observe(seconds)
                    elif event.type in (EventType.JOB_COMPLETED, EventType.JOB_FAILED):
                        self.run.observe(seconds)
            log.warning("metrics fell behind the event stream; resubscribing")
            await asyncio.sleep(0)
