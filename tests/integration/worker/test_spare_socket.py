"""The ComfyUI socket opened ahead of the next job, against the simulator over real WebSockets:
taken by the next job, drained while it waits, replaced when its ComfyUI went away."""

from __future__ import annotations

from pathlib import Path

from tests.support.simulator import serve_simulator
from tests.support.waiting import until
from worker.comfy_client import ComfyClient
from worker.spare_socket import SpareSocket


async def test_the_next_job_takes_the_socket_opened_ahead_and_a_new_one_is_opened(
    tmp_path: Path,
) -> None:
    async with serve_simulator(tmp_path / "sim") as sim:
        comfy = ComfyClient(sim.url, 10.0)
        spare = SpareSocket(comfy)
        spare.prime()
        await until(lambda: len(sim.sim.sockets.clients) == 1, 10, "the spare connected")
        (ahead,) = sim.sim.sockets.clients
        async with spare.job_socket() as socket:
            assert socket.client_id == ahead  # no connect on the job's path
            await until(lambda: len(sim.sim.sockets.clients) == 2, 10, "the next spare connected")
        await until(lambda: ahead not in sim.sim.sockets.clients, 10, "the job's socket closed")
        await spare.close()
        await until(lambda: not sim.sim.sockets.clients, 10, "the spare closed")
        await comfy.aclose()


async def test_a_spare_whose_comfyui_restarted_is_replaced_by_a_new_socket(
    tmp_path: Path,
) -> None:
    first = serve_simulator(tmp_path / "sim")
    sim = await first.__aenter__()
    port = int(sim.url.rsplit(":", 1)[1])
    comfy = ComfyClient(sim.url, 10.0)
    spare = SpareSocket(comfy)
    spare.prime()
    await until(lambda: len(sim.sim.sockets.clients) == 1, 10, "the spare connected")
    await first.__aexit__(None, None, None)  # the ComfyUI restarts: the spare is dead
    async with serve_simulator(tmp_path / "sim2", port=port) as again:
        async with spare.job_socket() as socket:
            assert socket.stream.is_open()
            assert socket.client_id in again.sim.sockets.clients
        await spare.close()
    await comfy.aclose()
