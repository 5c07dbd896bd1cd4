"""The worker agent's client for its local ComfyUI: HTTP calls and the `/ws` event stream."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from queue_manager.comfy.frames import Preview, Text, parse_frame
from queue_manager.comfy.remote import OutputRef
from worker.errors import ComfyUIUnavailable, PromptRefused

Message = dict[str, Any] | Preview | Text


class ComfyClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_json(self, path: str, **params: Any) -> Any:
        try:
            r = await self._http.get(path, params=params or None)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(f"ComfyUI {path}: {exc!r}") from exc
        return r.json()

    async def object_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self._get_json("/api/object_info")
        return info

    async def system_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self._get_json("/api/system_stats")
        return stats

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        entry = await self._get_json(f"/api/history/{prompt_id}")
        found: dict[str, Any] | None = entry.get(prompt_id) if isinstance(entry, dict) else None
        return found

    async def upload_input(self, path: Path, name: str) -> str:
        """Upload a file as `name` into ComfyUI's input folder; returns the name it got."""
        try:
            with path.open("rb") as fh:  # httpx streams a file object in chunks
                r = await self._http.post(
                    "/api/upload/image",
                    files={"image": (name, fh, "application/octet-stream")},
                    data={"type": "input", "overwrite": "true"},
                    timeout=httpx.Timeout(None, connect=10.0),
                )
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(f"ComfyUI upload: {exc!r}") from exc
        body = r.json()
        sub = body.get("subfolder") or ""
        return f"{sub}/{body['name']}" if sub else str(body["name"])

    async def post_prompt(
        self, prompt: dict[str, Any], prompt_id: str, client_id: str, extra_data: dict[str, Any]
    ) -> None:
        body = {
            "prompt": prompt,
            "prompt_id": prompt_id,
            "client_id": client_id,
            "extra_data": extra_data,
        }
        try:
            r = await self._http.post("/api/prompt", json=body)
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(f"ComfyUI /prompt: {exc!r}") from exc
        if r.status_code == 400:
            raise PromptRefused(r.json())
        if r.status_code != 200:
            raise ComfyUIUnavailable(f"ComfyUI /prompt answered {r.status_code}")

    async def delete_queued(self, prompt_id: str) -> bool:
        """Take a prompt out of ComfyUI's queue before it starts; True when it is neither
        pending nor running afterwards (a running one is ComfyUI's to finish or interrupt)."""
        try:
            await self._http.post("/api/queue", json={"delete": [prompt_id]})
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(f"ComfyUI /queue: {exc!r}") from exc
        queue = await self._get_json("/api/queue")
        listed = [*queue.get("queue_running", []), *queue.get("queue_pending", [])]
        if any(
            isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in listed
        ):
            return False
        return not await self.history(prompt_id)  # it may have run and ended meanwhile

    async def interrupt(self, prompt_id: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self._http.post("/api/interrupt", json={"prompt_id": prompt_id})

    @contextlib.asynccontextmanager
    async def view(self, ref: OutputRef) -> AsyncIterator[httpx.Response]:
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        try:
            async with self._http.stream(
                "GET", "/api/view", params=params, timeout=httpx.Timeout(None, connect=10.0)
            ) as r:
                r.raise_for_status()
                yield r
        except httpx.HTTPError as exc:
            raise ComfyUIUnavailable(f"ComfyUI /view {ref.filename}: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def events(self, client_id: str) -> AsyncIterator[EventStream]:
        url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
        try:
            async with websockets.connect(
                url, max_size=64 * 2**20, open_timeout=10, close_timeout=2
            ) as ws:
                await ws.send(
                    json.dumps(
                        {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
                    )
                )
                yield EventStream(ws)
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            raise ComfyUIUnavailable(f"ComfyUI /ws: {exc!r}") from exc


class EventStream:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    def is_open(self) -> bool:
        return self._ws.state is State.OPEN

    async def next(self) -> Message:
        try:
            raw = await self._ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            raise ComfyUIUnavailable(f"ComfyUI closed /ws: {exc!r}") from exc
        if isinstance(raw, bytes):
            frame = parse_frame(raw)
            return frame if frame is not None else {}
        message: dict[str, Any] = json.loads(raw)
        return message
