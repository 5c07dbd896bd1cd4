"""Helpers for tests of the serverless simulator (`worker.simulator.cluster`): its control API
read back, pictures to upload, a prompt followed to its end through the balancer."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from tests.support.waiting import until


async def replicas(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """`GET /_sim/replicas`'s list (one dict per replica)."""
    answer = await http.get("/_sim/replicas")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["replicas"]
    return found


async def until_replica(http: httpx.AsyncClient, index: int, **wanted: Any) -> dict[str, Any]:
    """Wait until replica `index` reports every field in `wanted`; its report."""
    seen: dict[str, Any] = {}

    async def holds() -> bool:
        nonlocal seen
        seen = (await replicas(http))[index]
        return all(seen[k] == v for k, v in wanted.items())

    await until(holds, what=f"replica {index} with {wanted}")
    return seen


async def until_done(http: httpx.AsyncClient, index: int, prompt_id: str) -> None:
    """Wait until replica `index` accepted `prompt_id` and has nothing left to run."""

    async def done() -> bool:
        report = (await replicas(http))[index]
        return prompt_id in report["prompts"] and report["queue_remaining"] == 0

    await until(done, what=f"{prompt_id} run on replica {index}")


def png(width: int = 20, height: int = 10, color: tuple[int, ...] = (200, 10, 10, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def load_and_save(image: str, prefix: str = "lb/loaded") -> dict[str, Any]:
    """A graph that loads input `image` and saves it again."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
