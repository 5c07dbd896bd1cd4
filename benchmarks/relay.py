"""Report relay across a slow link: a pull agent reaching the queue manager through a proxy that
delays every byte by half a round trip each way (a tailnet between the GPU box and the queue
manager), with the queue manager, a ComfyUI simulator (zero step delay) and the agent as
separate processes on loopback and a private redis-server.

Each job is the default text-to-image graph (seven nodes: a report as each starts, and the
run's start, progress and result). Timed from the job's own timeline: handed to the agent ->
finished (the agent completes a job once its reports are answered, so this is also when the
participant's page has heard the last of them). The agent sends the reports that queue up
while a request is on its way in one request (`CW_WORKER_REPORT_BATCH`, default 64); the
baseline, in the same run, is the same agent sending one request per report (`=1`).
Figures are printed, never asserted.
Usage: python -m benchmarks.relay [--jobs 20] [--rtt-ms 0,40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from queue_manager.cli.redis_server import free_port
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.core.jobs import Lane
from tests.support.graphs import sampler

from .worker import ROOT, GpuRoom, finished, gpu_room, pull_agent, stop

STEPS = 8  # the default graph's sampler steps


class SlowLink:
    """A TCP proxy to `port` that holds every chunk `delay` seconds before passing it on, in
    order, both ways (a round trip costs 2 x delay more)."""

    def __init__(self, port: int, delay: float) -> None:
        self.target, self.delay = port, delay
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> SlowLink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._links:
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        both = asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._links.add(both)
        try:
            await both
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._links.discard(both)
            writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                at, chunk = await due.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                writer.write(chunk)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                due.put_nowait((time.monotonic() + self.delay, chunk))
            due.put_nowait((0.0, b""))
            await sender
        finally:
            sender.cancel()


async def relay_times(
    room: GpuRoom, name: str, manager: str, work: Path, batch: int, jobs: int
) -> list[float]:
    """Handed -> finished (ms) of `jobs` jobs run one after another by a fresh agent reaching
    the queue manager at `manager`."""
    svc = room.svc
    env = {"CW_WORKER_REPORT_BATCH": str(batch)}
    agent = await pull_agent(svc, room.client, name, manager, room.comfyui, work, env)
    try:
        times = []
        for i in range(jobs + 1):  # the first warms up (connections, caches): not counted
            graph = sampler(STEPS)
            graph["3"]["inputs"]["seed"] = i
            job = await svc.submit(UserId("user001"), Lane.NORMAL, graph)
            await finished(svc, job.id)
            got = await svc.job(job.id)
            if i:
                times.append(((got.finished_at or 0) - (got.claimed_at or 0)) * 1000)
        return times
    finally:
        await svc.drain_worker(WorkerId(name), UserId("bench"))
        stop(agent)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--rtt-ms", default="0,40", help="round trips to measure, comma-separated")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-relay-", dir=ROOT.parent) as tmp:
        work = Path(tmp)
        async with gpu_room(work) as room:
            print(
                f"Report relay: {a.jobs} jobs of the default graph one after another on one "
                "agent, handed -> finished (p50 ms), the agent reaching the queue manager "
                "through a link with the round trip below."
            )
            qm_port = urlsplit(room.manager).port or 80
            for rtt in (float(r) for r in a.rtt_ms.split(",")):
                async with SlowLink(qm_port, rtt / 2000) as link:
                    manager = f"http://127.0.0.1:{link.port}"
                    got = {}
                    for batch in (1, 64):
                        name = f"rtt{rtt:.0f}-batch{batch}"
                        got[batch] = statistics.median(
                            await relay_times(room, name, manager, work, batch, a.jobs)
                        )
                print(
                    f"  round trip {rtt:4.0f} ms: one request per report {got[1]:7.1f} ms, "
                    f"batched {got[64]:7.1f} ms, ratio {got[64] / got[1]:.2f}x"
                )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
