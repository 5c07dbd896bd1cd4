"""One participant's run against a deployed workshop (behind nginx, in containers, or a replica
directly), over HTTPS with a certificate the test made:

    async def deployed_run(
        api: str,                    # base URL of the API: https://127.0.0.1:8443 (no slash)
        login: Login,                # queue_manager.rehearsal.client.Login(name, password)
        *,
        socket: str | None = None,   # base URL for the socket (default: `api`); http(s)/ws(s)
        verify: str | bool = True,   # CA file path (the test's self-signed cert), True, False
        prompt: dict | None = None,  # API-format prompt (default: a 32x24 image, saved)
        timeout: float = 60.0,       # seconds for the whole run
    ) -> DeployedRun                 # (image: bytes, job_id: str)

What a browser does: the login form (`POST /login`, session cookie), the socket
`/<user>/ws?clientId=...` opened and its first frame read, `POST /<user>/api/prompt`, the job's
`executed` and `execution_success` read on that socket, then the image downloaded from
`/<user>/api/view?filename=...`. Socket and API may be different replicas (`socket=` another
base): the events must reach the socket whichever replica took the job.

Logging in and error words are the rehearsal's own (queue_manager.rehearsal.client); an
AssertionError says which step failed and what the workshop said.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from typing import Any, NamedTuple

import httpx
from websockets.asyncio.client import ClientConnection, connect

from queue_manager.rehearsal.client import TIMEOUT, Login, error_message, log_in, session_cookie

SAVED_IMAGE: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 0x3366CC},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "deploy"}},
}


class DeployedRun(NamedTuple):
    image: bytes
    job_id: str


async def deployed_run(
    api: str,
    login: Login,
    *,
    socket: str | None = None,
    verify: str | bool = True,
    prompt: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> DeployedRun:
    tls = _tls(verify)
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(
            base_url=api, verify=tls, timeout=TIMEOUT, follow_redirects=False
        ) as http,
    ):
        await log_in(http, login)
        client_id = uuid.uuid4().hex
        url = f"{_ws(socket or api)}/{login.name}/ws?clientId={client_id}"
        async with connect(
            url,
            ssl=tls if url.startswith("wss:") else None,
            additional_headers={"Cookie": session_cookie(http)},
            max_size=None,
        ) as ws:
            await ws.recv()  # the first frame (status): the socket is registered
            job_id = await _submit(http, login.name, client_id, prompt or SAVED_IMAGE)
            files = await _outputs(ws, job_id)
        return DeployedRun(await _view(http, login.name, files[0]), job_id)


def _tls(verify: str | bool) -> ssl.SSLContext:
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _ws(base: str) -> str:
    return base.replace("http", "ws", 1) if base.startswith("http") else base


async def _submit(http: httpx.AsyncClient, user: str, client_id: str, prompt: Any) -> str:
    answer = await http.post(f"/{user}/api/prompt", json={"client_id": client_id, "prompt": prompt})
    assert answer.status_code == 200, f"submitting answered {error_message(answer)}"
    return str(answer.json()["prompt_id"])


async def _outputs(ws: ClientConnection, job_id: str) -> list[dict[str, Any]]:
    """The files the job's `executed` messages name, once `execution_success` arrives."""
    files: list[dict[str, Any]] = []
    async for frame in ws:
        if isinstance(frame, bytes):
            continue  # a preview image
        message = json.loads(frame)
        data = message.get("data")
        if not isinstance(data, dict) or data.get("prompt_id") != job_id:
            continue
        kind = message.get("type")
        if kind == "executed":
            files += _files(data.get("output") or {})
        elif kind in ("execution_error", "execution_interrupted"):
            raise AssertionError(f"job {job_id} ended with {kind}: {data}")
        elif kind == "execution_success":
            assert files, f"job {job_id} succeeded without naming a file"
            return files
    raise AssertionError(f"the socket closed before job {job_id} ended")


def _files(output: dict[str, Any]) -> list[dict[str, Any]]:
    """The file items of a node's UI output (`images`, `gifs`, `video`...)."""
    lists = [items for items in output.values() if isinstance(items, list)]
    return [
        item for items in lists for item in items if isinstance(item, dict) and "filename" in item
    ]


async def _view(http: httpx.AsyncClient, user: str, item: dict[str, Any]) -> bytes:
    params = {k: str(item.get(k, "")) for k in ("filename", "subfolder", "type")}
    answer = await http.get(f"/{user}/api/view", params=params)
    assert answer.status_code == 200, f"/api/view of {params} answered {answer.status_code}"
    return answer.content
