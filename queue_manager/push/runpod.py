"""One job on a `runpod` endpoint: RunPod serverless running `worker-comfyui` (its documented
contract: `POST {url}/run` with `{"input": {"workflow", "images": [{"name", "image"}]}}`, then
`GET {url}/status/{id}` until COMPLETED / FAILED / CANCELLED / TIMED_OUT, `POST
{url}/cancel/{id}`; the API key travels in the endpoint's configured header).

* The job's input files go along as base64 under collision-free names, the workflow pointing
  at them.
* `IN_QUEUE` is RunPod's cold start (or its queue): the participant reads "GPU starting"; past
  the cold-start timeout the RunPod job is cancelled and ours goes back to the queue.
  `IN_PROGRESS` is the run: the participant's page shows it started.
* Outputs come back as base64 (or as URLs to the operator's bucket, fetched without our API
  key) and are stored as a pull worker's are.
* A `/run` whose answer was lost cannot be looked up (RunPod knows no id of ours): it is sent
  again, and the job may then run twice on RunPod; only the first result counts here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from queue_manager.comfy.remote import OutputRef, file_inputs, save_prefixes, with_renamed_inputs
from queue_manager.core.events import EventType
from queue_manager.push.client import DeliveryUnknown, EndpointClient, EndpointDown
from queue_manager.push.handle import JobHandle
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.outcomes import ColdStartTimeout, OutputMissing, PromptLost
from queue_manager.push.run_base import RunBase
from queue_manager.settings import Settings

log = logging.getLogger(__name__)

_RUNNING = "IN_PROGRESS"
_WAITING = ("IN_QUEUE",)
_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class RunPodRun(RunBase):
    def __init__(
        self,
        handle: JobHandle,
        client: EndpointClient,
        monitor: EndpointMonitor,
        object_info: Mapping[str, Any],
        settings: Settings,
    ) -> None:
        super().__init__(handle, client, monitor, settings)
        self.object_info = object_info
        self.runpod_id: str | None = None
        self._last: dict[str, Any] = {}

    async def run(self) -> None:
        body = {"input": await self._input()}
        self.runpod_id = await self._submit(body)
        log.info("job=%s is RunPod job %s on endpoint=%s", self.id, self.runpod_id,
                 self.config.name)  # fmt: skip
        await self._wait_for_a_worker()
        async with asyncio.timeout(self.config.job_timeout):
            answer = await self._until_done()
        await self._finish(answer)

    async def forget(self) -> None:
        if self.runpod_id is None:
            return
        for _ in range(2):
            try:
                await self.client.api("POST", f"/cancel/{self.runpod_id}")
                return
            except Exception as exc:  # best effort: RunPod ends it by its own timeout too
                log.info("job=%s: cancelling RunPod job %s: %s", self.id, self.runpod_id, exc)

    # -- input --------------------------------------------------------------------------------

    async def _input(self) -> dict[str, Any]:
        renames: dict[tuple[str, str], str] = {}
        images = []
        for ref in file_inputs(self.handle.prompt, self.object_info):
            source = await self.handle.input_file(ref)
            name = f"cw_{self.handle.job.user}_{self.id[:8]}_{PurePosixPath(ref.name).name}"
            data = await asyncio.to_thread(Path(source).read_bytes)
            images.append({"name": name, "image": base64.b64encode(data).decode()})
            renames[(ref.node_id, ref.input_name)] = name
        workflow = with_renamed_inputs(self.handle.prompt, renames)
        return {"workflow": workflow, "images": images} if images else {"workflow": workflow}

    # -- submission and waiting ----------------------------------------------------------------

    async def _submit(self, body: dict[str, Any]) -> str:
        started = time.monotonic()
        backoff = 0.5
        while True:
            try:
                answer = await self.client.api("POST", "/run", body)
                await self.monitor.answered()
                runpod_id = answer.get("id")
                if not isinstance(runpod_id, str) or not runpod_id:
                    raise PromptLost(f"RunPod's /run answered no job id: {str(answer)[:200]}")
                return runpod_id
            except DeliveryUnknown as exc:  # RunPod cannot be asked: sent again (see above)
                log.warning("job=%s: /run answer lost (%s); sending it again", self.id, exc)
                await self._down(exc, started)
            except EndpointDown as exc:
                await self._down(exc, started)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 1.5, 5.0)

    async def _down(self, exc: EndpointDown, started: float) -> None:
        await self.say_starting()
        await self.monitor.down(str(exc))
        if time.monotonic() - started >= self.config.cold_start_timeout:
            raise ColdStartTimeout(
                f"RunPod endpoint {self.config.name} did not take the job within "
                f"{self.config.cold_start_timeout:.0f} s ({exc})"
            ) from exc

    async def _wait_for_a_worker(self) -> None:
        """While RunPod has it IN_QUEUE (a cold start, or its own queue), up to the endpoint's
        cold-start timeout: then it is cancelled there and goes back to our queue."""
        started = time.monotonic()
        while True:
            status = await self._status()
            if status.get("status") not in _WAITING:
                self._last = status
                return
            await self.say_starting()
            await self.monitor.down("RunPod job IN_QUEUE: waiting for a worker", since=None)
            if time.monotonic() - started >= self.config.cold_start_timeout:
                await self.forget()
                raise ColdStartTimeout(
                    f"RunPod kept the job IN_QUEUE for {self.config.cold_start_timeout:.0f} s"
                )
            await asyncio.sleep(self.settings.endpoint_poll_seconds)

    async def _until_done(self) -> dict[str, Any]:
        status = self._last
        while True:
            state = status.get("status")
            await self.monitor.answered()
            if state == _RUNNING:
                await self.started_now()
            if state not in (_RUNNING, *_WAITING):
                if state == "COMPLETED":  # ran between two polls: it did start
                    await self.started_now()
                return status
            await asyncio.sleep(self.settings.endpoint_poll_seconds)
            status = await self._status()

    async def _status(self) -> dict[str, Any]:
        """The RunPod job's status; a refused or lost ask is asked again (the job runs on)."""
        while True:
            try:
                return await self.client.api("GET", f"/status/{self.runpod_id}")
            except EndpointDown as exc:
                log.debug("job=%s status: %s", self.id, exc)
                await asyncio.sleep(self.settings.endpoint_poll_seconds)

    # -- the outcome --------------------------------------------------------------------------

    async def _finish(self, status: dict[str, Any]) -> None:
        state = status.get("status")
        output = status.get("output")
        if state == "COMPLETED":
            await self._store_outputs(output if isinstance(output, dict) else {})
            await self.handle.complete()
        elif state == "FAILED":
            await self.handle.fail(_failure(status))
        elif state == "TIMED_OUT":
            await self.handle.fail({
                "type": "job_timeout",
                "message": f"RunPod ended the job at its execution timeout ({self.config.name})",
            })  # fmt: skip
        else:  # CANCELLED by someone else, or a status we do not know: run it again elsewhere
            raise PromptLost(f"RunPod job {self.runpod_id} ended {state!r}")

    async def _store_outputs(self, output: dict[str, Any]) -> None:
        items = [i for i in output.get("images") or [] if isinstance(i, dict)]
        prefixes = save_prefixes(self.handle.prompt)
        nodes = set()
        for n, item in enumerate(items, 1):
            name = PurePosixPath(str(item.get("filename") or f"runpod_{n:05d}_.png")).name
            node = _node_of(name, prefixes)
            nodes.add(node)
            ref = OutputRef(node, "images", name, "", "output")
            kind, data = item.get("type"), item.get("data")
            if not isinstance(data, str):
                raise OutputMissing(f"RunPod output {name} has no data")
            if kind == "base64":
                await self.handle.store(ref, "", _once(_decoded(data, name)))
            else:  # "s3_url": the operator's bucket, asked without our RunPod key
                await self.handle.store(ref, "", _download(data))
        for node in sorted(nodes):  # the page shows each save node's pictures
            await self.handle.tell(EventType.JOB_EXECUTED, {"node": node, "output": {}})


def _node_of(name: str, prefixes: Mapping[str, str]) -> str:
    """The save node whose `filename_prefix` named the file (RunPod sends names only)."""
    for node_id, prefix in sorted(prefixes.items(), key=lambda p: -len(p[1])):
        if name.startswith(f"{PurePosixPath(prefix).name}_"):
            return node_id
    return next(iter(prefixes), "")


def _decoded(data: str, name: str) -> bytes:
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise OutputMissing(f"RunPod output {name} is not valid base64") from exc


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _download(url: str) -> AsyncIterator[bytes]:
    if not url.startswith(("https://", "http://")):
        raise OutputMissing(f"RunPod output URL {url[:80]!r} is not http(s)")
    async with (
        httpx.AsyncClient(timeout=_DOWNLOAD_TIMEOUT) as http,
        http.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise OutputMissing(f"RunPod output URL answered {response.status_code}")
        async for chunk in response.aiter_raw(1 << 20):
            yield chunk


def _failure(status: Mapping[str, Any]) -> dict[str, Any]:
    output = status.get("output")
    details = output.get("details") if isinstance(output, dict) else None
    message = str(status.get("error") or "the RunPod job failed").strip()
    return {"type": "execution_error", "message": message[:2000], "details": details}
