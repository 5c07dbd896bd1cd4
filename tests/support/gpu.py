"""A GPU worker acting through the worker API in process, as the agent does."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from fastapi import FastAPI

from queue_manager.comfy.bundled import bundled_object_info

BUNDLED = bundled_object_info()


class Gpu:
    """A worker acting through the worker API, as the agent does."""

    def __init__(self, app: FastAPI, headers: dict[str, str]) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://qm", headers=headers
        )

    async def register(self, object_info: dict[str, Any] | None = None) -> None:
        info = object_info or BUNDLED
        r = await self.client.post(
            "/worker/v1/register", json={"node_types": sorted(info), "info": {"gpu": "sim"}}
        )
        assert r.status_code == 204, r.text
        body = gzip.compress(json.dumps(info).encode())
        r = await self.client.put(
            "/worker/v1/object_info", content=body, headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 204, r.text

    async def claim(self) -> dict[str, Any]:
        r = await self.client.post("/worker/v1/claim", params={"wait": 0})
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        return job

    async def tell(self, job: dict[str, Any], kind: str, **data: Any) -> None:
        r = await self.client.post(
            f"/worker/v1/jobs/{job['id']}/events",
            json={"attempt": job["attempt"], "type": kind, "data": data},
        )
        assert r.status_code == 204, r.text

    async def store(self, job: dict[str, Any], output: dict[str, Any]) -> None:
        """Upload an output of `output["size"]` bytes; the queue manager must store it under
        exactly the name and place `output` describes."""
        params = {k: output[k] for k in ("filename", "subfolder", "type", "node_id", "media")}
        r = await self.client.put(
            f"/worker/v1/jobs/{job['id']}/outputs",
            params={"attempt": job["attempt"], **params},
            content=b"x" * output["size"],
        )
        assert r.status_code == 201, r.text
        assert r.json() == output

    async def complete(self, job: dict[str, Any]) -> None:
        r = await self.client.post(
            f"/worker/v1/jobs/{job['id']}/complete", json={"attempt": job["attempt"]}
        )
        assert r.status_code == 204, r.text
