"""One job on one replica, the way worker-comfyui's handler runs it against the ComfyUI in its
own container: upload the input images, open `/ws` with a fresh client id, `POST /prompt`,
wait for `executing` with no node (or `execution_error`) for that prompt, read
`/history/{id}` and fetch every saved picture through `/view` as base64. Cancelled (the job
was cancelled or timed out) after the prompt went in, it interrupts that prompt."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from worker.simulator.runpod.results import (
    JobInput,
    Outcome,
    OutputRef,
    execution_failure,
    image_item,
    outcome,
    saved_images,
    validation_failure,
)

log = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
INTERRUPT_TIMEOUT = 2.0


class WorkerLost(Exception):
    """The replica went away in the middle of the job (its socket or HTTP broke off)."""


async def run_job(client: httpx.AsyncClient, base: str, job: JobInput) -> Outcome:
    """`client` has the timeouts; the socket's keepalive pings bound the wait for the run."""
    try:
        failed = await _upload(client, base, job)
        if failed is not None:
            return failed
        client_id = uuid.uuid4().hex
        ws_url = "ws" + base.removeprefix("http") + f"/ws?clientId={client_id}"
        async with websockets.connect(ws_url, open_timeout=OPEN_TIMEOUT, max_size=None) as ws:
            queued = await _queue(client, base, job, client_id)
            if isinstance(queued, Outcome):
                return queued
            errors = await _follow_interrupting(client, base, ws, queued)
        return await _collect(client, base, queued, errors)
    except (httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
        raise WorkerLost(str(exc) or type(exc).__name__) from exc


async def _upload(client: httpx.AsyncClient, base: str, job: JobInput) -> Outcome | None:
    details = []
    for image in job.images:
        files = {"image": (image.name, image.data, "image/png")}
        answer = await client.post(f"{base}/upload/image", files=files, data={"overwrite": "true"})
        if answer.status_code != 200:
            details.append(f"Error uploading {image.name}: HTTP {answer.status_code}")
    if details:
        return Outcome({"details": details}, "Failed to upload one or more input images")
    return None


async def _queue(
    client: httpx.AsyncClient, base: str, job: JobInput, client_id: str
) -> str | Outcome:
    answer = await client.post(
        f"{base}/prompt", json={"prompt": job.workflow, "client_id": client_id}
    )
    if answer.status_code == 400:
        return Outcome.failed(validation_failure(_json(answer)))
    if answer.status_code != 200:
        return Outcome.failed(f"Error queuing workflow: HTTP {answer.status_code}")
    return str(answer.json()["prompt_id"])


async def _follow_interrupting(
    client: httpx.AsyncClient, base: str, ws: ClientConnection, prompt_id: str
) -> list[str]:
    try:
        return await _follow(ws, prompt_id)
    except asyncio.CancelledError:
        with contextlib.suppress(httpx.HTTPError, TimeoutError):
            async with asyncio.timeout(INTERRUPT_TIMEOUT):
                await client.post(f"{base}/interrupt", json={"prompt_id": prompt_id})
        raise


async def _follow(ws: ClientConnection, prompt_id: str) -> list[str]:
    """Read the socket until the prompt is done; the execution errors seen. (worker-comfyui
    stops at the error; the history is only written after it, so this reads on to the end.)"""
    errors = []
    async for frame in ws:
        if not isinstance(frame, str):
            continue  # previews
        message = json.loads(frame)
        data = message.get("data") or {}
        if data.get("prompt_id") != prompt_id:
            continue
        if message.get("type") == "execution_error":
            errors.append(execution_failure(data))
        if message.get("type") == "executing" and data.get("node") is None:
            return errors
    raise WorkerLost("the replica's socket closed before the prompt ended")


async def _collect(
    client: httpx.AsyncClient, base: str, prompt_id: str, errors: list[str]
) -> Outcome:
    history = _json(await client.get(f"{base}/history/{prompt_id}"))
    if not isinstance(history, dict) or prompt_id not in history:
        return Outcome.failed(f"Prompt ID {prompt_id} not found in history after execution.")
    images = []
    for ref in saved_images(history[prompt_id]):
        data = await _view(client, base, ref)
        if data is None:
            errors.append(f"Failed to fetch image data for {ref.filename} from /view endpoint.")
        else:
            images.append(image_item(ref.filename, data))
    return outcome(images, errors)


async def _view(client: httpx.AsyncClient, base: str, ref: OutputRef) -> bytes | None:
    params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
    answer = await client.get(f"{base}/view", params=params)
    return answer.content if answer.status_code == 200 else None


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None
