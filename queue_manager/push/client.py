"""HTTP and WebSocket calls to a ComfyUI endpoint, which may be many replicas behind a load
balancer: any call may reach a replica that is cold, starting, or does not know our prompt.

Failures are sorted by what the caller may do next:

* `EndpointDown`: nothing was delivered (refused, connect timeout, 503 while cold): retry.
* `DeliveryUnknown`: the request may have been delivered (the answer was lost, 502/504, a read
  timeout): look the prompt up before sending it again.
* `PromptRefused`: ComfyUI's 400 answer to `POST /prompt` (the body is kept).
* `EndpointBusy`: our agent (kind `agent`) runs another job: push again later.
* `EndpointError`: an answer that retrying will not change.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from queue_manager.comfy.remote import OutputRef
from queue_manager.contract.agent_api import JOBS, PushedJob, PushedJobState
from queue_manager.core.endpoints import EndpointConfig

# Statuses a load balancer or a starting container answers while nothing ran.
NOT_DELIVERED = frozenset({429, 503})
# Statuses after which the request may have reached a replica.
MAYBE_DELIVERED = frozenset({500, 502, 504})
_WS_MAX = 64 * 2**20
_JSON_BODY = {"Content-Type": "application/json"}


class EndpointDown(Exception):
    """Nothing was delivered: the endpoint is cold, starting, or away. Retry."""


class DeliveryUnknown(EndpointDown):
    """The request may have been delivered; its answer was lost."""


class PromptRefused(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("the endpoint refused the prompt")
        self.body = body


class EndpointError(Exception):
    """An answer that retrying will not change (a 404 route, a 401 key, bad JSON)."""


class EndpointBusy(Exception):
    """Our agent answered 409 to a push: it runs another job (one per container)."""


class NotOnThisReplica(Exception):
    """`/view` answered 404: the replica asked does not have the file (another may)."""


class EndpointClient:
    def __init__(self, config: EndpointConfig, timeout: float) -> None:
        self.config = config
        self._headers = dict(config.headers)
        self._http = httpx.AsyncClient(
            base_url=config.url,
            headers=self._headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = await self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise EndpointDown(f"{path}: {_plain(exc)}") from exc
        except httpx.TransportError as exc:  # sent, then the answer was lost or timed out
            raise DeliveryUnknown(f"{path}: {_plain(exc)}") from exc
        if r.status_code in NOT_DELIVERED:
            raise EndpointDown(f"{path} answered {r.status_code}")
        if r.status_code in MAYBE_DELIVERED:
            raise DeliveryUnknown(f"{path} answered {r.status_code}")
        return r

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        r = await self._call(method, path, **kw)
        if r.status_code != 200:
            raise EndpointError(f"{path} answered {r.status_code}: {r.text[:200]}")
        try:
            return r.json()
        except ValueError as exc:
            raise EndpointError(f"{path} answered something that is not JSON") from exc

    async def api(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A JSON call to a job API (RunPod's `/run`, `/status/{id}`, ...): its JSON object."""
        found = await self._json(method, path, json=body)
        if not isinstance(found, dict):
            raise EndpointError(f"{path} answered something that is not a JSON object")
        return found

    async def answers(self, path: str) -> None:
        """Whether the endpoint answers a cheap GET with 200 (raises EndpointDown or
        EndpointError otherwise)."""
        r = await self._call("GET", path)
        if r.status_code != 200:
            raise EndpointError(f"{path} answered {r.status_code}")

    async def object_info(self) -> dict[str, Any]:
        info = await self._json("GET", "/api/object_info")
        if not isinstance(info, dict):
            raise EndpointError("/api/object_info is not a JSON object")
        return info

    async def post_prompt(
        self, prompt: Mapping[str, Any], prompt_id: str, client_id: str, extra: Mapping[str, Any]
    ) -> None:
        body = {"prompt": prompt, "prompt_id": prompt_id, "client_id": client_id,
                "extra_data": extra}  # fmt: skip
        r = await self._call("POST", "/api/prompt", json=body)
        if r.status_code == 400:
            try:
                refused = r.json()
            except ValueError:
                refused = {"error": {"type": "prompt_refused", "message": r.text[:500]}}
            raise PromptRefused(refused if isinstance(refused, dict) else {})
        if r.status_code != 200:
            raise EndpointError(f"/api/prompt answered {r.status_code}: {r.text[:200]}")

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry on the replica asked; None where it does not know it
        (`{}`: ask again, it may be on another replica)."""
        found = await self._json("GET", f"/api/history/{prompt_id}")
        entry = found.get(prompt_id) if isinstance(found, dict) else None
        return entry if isinstance(entry, dict) else None

    async def queue_place(self, prompt_id: str) -> str | None:
        """Where the replica asked has the prompt: "running", "pending", or None."""
        queue = await self._json("GET", "/api/queue")
        if not isinstance(queue, dict):
            return None
        for key, place in (("queue_running", "running"), ("queue_pending", "pending")):
            for item in queue.get(key) or []:
                if isinstance(item, list) and len(item) > 1 and item[1] == prompt_id:
                    return place
        return None

    async def upload_input(self, path: Path, name: str) -> str:
        """Upload a file as `name` into the input folder; returns the name it got there."""
        with path.open("rb") as fh:
            r = await self._call(
                "POST",
                "/api/upload/image",
                files={"image": (name, fh, "application/octet-stream")},
                data={"type": "input", "overwrite": "true"},
                timeout=httpx.Timeout(None, connect=10.0),
            )
        if r.status_code != 200:
            raise EndpointError(f"/api/upload/image answered {r.status_code}")
        body = r.json()
        sub = body.get("subfolder") or ""
        return f"{sub}/{body['name']}" if sub else str(body["name"])

    async def unqueue(self, prompt_id: str) -> None:
        """Take the prompt out of the queue of the replica asked (best effort: through a load
        balancer the right replica may not be the one asked)."""
        with contextlib.suppress(EndpointDown, httpx.HTTPError):
            await self._call("POST", "/api/queue", json={"delete": [prompt_id]})

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt the prompt if the replica asked runs it (ComfyUI leaves any other
        prompt alone; best effort, as `unqueue`)."""
        with contextlib.suppress(EndpointDown, httpx.HTTPError):
            await self._call("POST", "/api/interrupt", json={"prompt_id": prompt_id})

    @contextlib.asynccontextmanager
    async def view(self, ref: OutputRef) -> AsyncIterator[httpx.Response]:
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        try:
            async with self._http.stream(
                "GET", "/api/view", params=params, timeout=httpx.Timeout(None, connect=10.0)
            ) as r:
                if r.status_code == 404:
                    raise NotOnThisReplica(ref.filename)
                if r.status_code in NOT_DELIVERED | MAYBE_DELIVERED:
                    raise EndpointDown(f"/api/view answered {r.status_code}")
                if r.status_code != 200:
                    raise EndpointError(f"/api/view answered {r.status_code}")
                yield r
        except httpx.TransportError as exc:
            raise EndpointDown(f"/api/view: {_plain(exc)}") from exc

    @contextlib.asynccontextmanager
    async def events(self, client_id: str) -> AsyncIterator[ClientConnection]:
        """The `/ws` socket of whichever replica the balancer picks, as `client_id`."""
        url = self.config.url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
        try:
            async with websockets.connect(
                url,
                additional_headers=self._headers,
                max_size=_WS_MAX,
                open_timeout=10,
                close_timeout=2,
            ) as ws:
                flags = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
                await ws.send(json.dumps(flags))
                yield ws
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise EndpointDown(f"/ws: {_plain(exc)}") from exc

    # -- our agent in a serverless image (kind `agent`; `contract.agent_api`) ---------------

    async def push_job(self, job: PushedJob) -> None:
        """Hand a job to the agent: taken (202), or EndpointBusy / EndpointError."""
        body = job.model_dump_json()
        r = await self._call("POST", JOBS, content=body, headers=_JSON_BODY)
        if r.status_code == 409:
            raise EndpointBusy(f"{JOBS} answered 409 (busy with another job)")
        if r.status_code != 202:
            raise EndpointError(f"{JOBS} answered {r.status_code}: {r.text[:200]}")

    async def pushed_job(self, job_id: str) -> PushedJobState | None:
        """The job as the agent asked has it; None where it is not there."""
        r = await self._call("GET", f"{JOBS}/{job_id}")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise EndpointError(f"{JOBS}/{job_id} answered {r.status_code}")
        try:
            return PushedJobState.model_validate_json(r.content)
        except ValueError as exc:
            raise EndpointError(f"{JOBS}/{job_id} answered something unexpected") from exc

    async def cancel_pushed(self, job_id: str) -> None:
        """Stop the job on the agent that runs it (best effort)."""
        with contextlib.suppress(EndpointDown, httpx.HTTPError):
            await self._call("POST", f"{JOBS}/{job_id}/cancel")


def _plain(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
