"""The simulator's ASGI app: ComfyUI's HTTP routes (each also under /api, as ComfyUI registers
them) and `/ws`, over one in-memory queue that a single runner executes in priority order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from queue_manager.comfy.bundled import bundled_object_info
from queue_manager.comfy.validation import ServerCrash, split_annotated_filename, validate_prompt
from queue_manager.core.ids import is_job_id
from queue_manager.storage.static_files import file_inside
from worker.simulator import files
from worker.simulator.executor import Executor
from worker.simulator.files import ComfyJSONResponse as JSONResponse
from worker.simulator.nodes import NODES
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.sockets import SERVER_FEATURES, Client, Sockets
from worker.simulator.state import Finished, QueueItem, SimState

log = logging.getLogger(__name__)

# The model files the frontends' default graphs name (shared/comfyui-reference/default-graphs),
# listed so those graphs validate.
MODELS = {
    "checkpoints": ["v1-5-pruned-emaonly-fp16.safetensors"],
    "diffusion_models": ["z_image_turbo_bf16.safetensors"],
    "text_encoders": ["qwen_3_4b.safetensors"],
    "vae": ["ae.safetensors"],
}
_MODEL_INPUTS = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
}
Handler = Callable[[Request], Awaitable[Response]]
# The page's static files under --front-end-root, with ComfyUI 0.25.0's cache headers
# (PROTOCOL.md section 2): index.html is never kept, scripts, styles and index*.json are
# revalidated, images may be kept a day (an hour for a 404).
_INDEX_HEADERS = {
    "Cache-Control": "no-store, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "0",
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_MEDIA_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css"}
# What a ComfyUI 0.25.0 install reports about its Python packages (system_stats).
PACKAGE_VERSIONS = [
    {"name": "comfyui-frontend-package", "installed": "1.45.15", "required": "1.45.15"},
    {"name": "comfyui-workflow-templates", "installed": "0.10.0", "required": "0.10.0"},
    {"name": "comfyui-embedded-docs", "installed": "0.5.4", "required": "0.5.4"},
    {"name": "comfy-kitchen", "installed": "0.2.10", "required": "0.2.10"},
    {"name": "comfy-aimdo", "installed": "0.4.10", "required": "0.4.10"},
]


def load_object_info(input_dir: Path) -> dict[str, Any]:
    info = bundled_object_info()
    for (node, name), folder in _MODEL_INPUTS.items():
        spec = info[node]["input"]["required"][name]
        spec[0] = sorted(set(spec[0]) | set(MODELS[folder]))
    info["LoadImage"]["input"]["required"]["image"][0] = _input_files(input_dir)
    return info


def _input_files(input_dir: Path) -> list[str]:
    """LoadImage's list, as ComfyUI builds it: the image files directly in the input folder
    (subfolder files are valid values all the same: `"sub/x.png"`)."""
    return sorted(p.name for p in input_dir.iterdir() if p.is_file() and _is_image_name(p.name))


def _is_image_name(name: str) -> bool:
    media = mimetypes.guess_type(name, strict=False)[0] or ""
    return media.startswith("image/")


def _folders_elsewhere(config: SimulatorConfig) -> dict[str, Path]:
    chosen = {"input": config.input_directory, "output": config.output_directory}
    return {kind: folder for kind, folder in chosen.items() if folder is not None}


def _memory() -> tuple[int, int]:
    """(total, available) bytes of RAM, 0 where the platform does not tell."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


class Simulator:
    def __init__(self, base: Path, config: SimulatorConfig) -> None:
        self.folders = files.Folders(base, _folders_elsewhere(config))
        self.config = config
        self.state = SimState()
        self.sockets = Sockets()
        self.object_info = load_object_info(self.folders.of("input"))
        self.executor = Executor(
            object_info=self.object_info,
            nodes=NODES,
            config=config,
            output_dir=self.folders.of("output"),
            temp_dir=self.folders.of("temp"),
            input_dir=self.folders.of("input"),
            sink=self.sockets,
        )
        self.work = asyncio.Event()
        self.interrupt = asyncio.Event()

    # -- the runner -----------------------------------------------------------------------

    async def run_queue(self) -> None:
        while True:
            item = self.state.take()
            if item is None:
                self.work.clear()
                await self.work.wait()
                continue
            await self.broadcast_status()
            self.interrupt.clear()
            result = await self.executor.run(
                item.prompt_id,
                item.prompt,
                item.outputs,
                item.client_id,
                self.interrupt,
                item.extra_data,
            )
            self.state.finish(
                Finished(
                    item,
                    result.outcome,
                    result.outputs,
                    result.messages,
                    result.start_ms,
                    result.end_ms,
                )
            )
            await self.broadcast_status()
            if item.client_id is not None:
                await self.sockets.send_json(
                    "executing", {"node": None, "prompt_id": item.prompt_id}, item.client_id
                )

    async def broadcast_status(self) -> None:
        await self.sockets.send_json("status", self.status_data(), None)

    def status_data(self) -> dict[str, Any]:
        return {"status": {"exec_info": {"queue_remaining": self.state.queue_remaining()}}}

    # -- POST /prompt ---------------------------------------------------------------------

    async def post_prompt(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _crash()
        if not isinstance(body, dict):
            return _crash()
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = self.state.next_number()
            if body.get("front"):
                number = -number
        if "prompt" not in body:
            return _error(400, "no_prompt", "No prompt provided", "No prompt provided")
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        if not isinstance(prompt_id, str) or not is_job_id(prompt_id):
            return _error(
                400,
                "invalid_prompt_id",
                "prompt_id must be a valid UUID",
                "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
                "omit it to let the server generate one",
            )
        self.refresh_input_list()
        try:
            result = validate_prompt(
                body["prompt"],
                self.object_info,
                input_file_exists=self.input_exists,
                partial_execution_targets=body.get("partial_execution_targets"),
            )
        except ServerCrash:
            return _crash()
        if not result.ok:
            return JSONResponse({"error": result.error, "node_errors": result.node_errors}, 400)
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id") is not None:
            extra["client_id"] = body["client_id"]
        extra["create_time"] = int(time.time() * 1000)
        self.state.put(QueueItem(number, prompt_id, body["prompt"], extra, list(result.outputs)))
        self.work.set()
        await self.broadcast_status()
        return JSONResponse(
            {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        )

    def refresh_input_list(self) -> None:
        self.object_info["LoadImage"]["input"]["required"]["image"][0] = _input_files(
            self.folders.of("input")
        )

    def input_exists(self, name: str) -> bool:
        """A loader node's file check, as ComfyUI's `exists_annotated_filepath`."""
        base, folder = split_annotated_filename(name)
        return os.path.exists(os.path.join(self.folders.of(folder), base))

    # -- queue, history, jobs, interrupt --------------------------------------------------

    async def get_prompt(self, request: Request) -> Response:
        return JSONResponse({"exec_info": {"queue_remaining": self.state.queue_remaining()}})

    async def get_queue(self, request: Request) -> Response:
        return JSONResponse(self.state.queue_json())

    async def post_queue(self, request: Request) -> Response:
        body = await _json_or_empty(request)
        changed = False
        if body.get("clear"):
            self.state.pending.clear()
            changed = True  # ComfyUI announces a wipe even of an empty queue
        if isinstance(body.get("delete"), list):
            changed = self.state.delete_pending(str(x) for x in body["delete"]) or changed
        if changed:
            await self.broadcast_status()
        return Response(status_code=200)

    async def get_history(self, request: Request) -> Response:
        q = request.query_params
        max_items = int(q["max_items"]) if "max_items" in q else None
        offset = int(q["offset"]) if "offset" in q else None
        return JSONResponse(self.state.history_json(max_items, offset))

    async def get_history_item(self, request: Request) -> Response:
        pid = request.path_params["prompt_id"]
        done = self.state.history.get(pid)
        return JSONResponse({pid: done.entry()} if done else {})

    async def post_history(self, request: Request) -> Response:
        body = await _json_or_empty(request)
        if body.get("clear"):
            self.state.history.clear()
        for pid in body.get("delete", []) if isinstance(body.get("delete"), list) else []:
            self.state.history.pop(str(pid), None)
        return Response(status_code=200)

    async def get_jobs(self, request: Request) -> Response:
        status, body = self.state.jobs_json(request.query_params)
        return JSONResponse(body, status)

    async def get_job(self, request: Request) -> Response:
        job = self.state.job_json(request.path_params["job_id"])
        return JSONResponse(job) if job else JSONResponse({"error": "Job not found"}, 404)

    async def post_interrupt(self, request: Request) -> Response:
        body = await _json_or_empty(request)
        running = self.state.running
        target = body.get("prompt_id")
        if running is not None and (not target or target == running.prompt_id):
            self.interrupt.set()
        return Response(status_code=200)

    async def post_free(self, request: Request) -> Response:
        """Unloading models and freeing memory: nothing to do without models."""
        return Response(status_code=200)

    # -- information ----------------------------------------------------------------------

    async def get_object_info(self, request: Request) -> Response:
        self.refresh_input_list()
        return JSONResponse(self.object_info)

    async def get_object_info_node(self, request: Request) -> Response:
        name = request.path_params["node_class"]
        self.refresh_input_list()
        return JSONResponse({name: self.object_info[name]} if name in self.object_info else {})

    async def get_system_stats(self, request: Request) -> Response:
        ram_total, ram_free = _memory()
        return JSONResponse(
            {
                "system": {
                    "os": "linux" if sys.platform.startswith("linux") else sys.platform,
                    "ram_total": ram_total,
                    "ram_free": ram_free,
                    "comfyui_version": "0.25.0",
                    "required_frontend_version": "1.45.15",
                    "installed_templates_version": "0.10.0",
                    "required_templates_version": "0.10.0",
                    "comfy_package_versions": PACKAGE_VERSIONS,
                    "python_version": sys.version,
                    "pytorch_version": "none (ComfyUI simulator)",
                    "embedded_python": False,
                    "deploy_environment": "simulator",
                    "argv": ["comfy-workshop", "simulator"],
                },
                "devices": [
                    {
                        "name": "ComfyUI simulator (no GPU)",
                        "type": "cpu",
                        "index": None,
                        "vram_total": ram_total,
                        "vram_free": ram_free,
                        "torch_vram_total": ram_total,
                        "torch_vram_free": ram_free,
                    }
                ],
            }
        )

    async def get_features(self, request: Request) -> Response:
        return JSONResponse(SERVER_FEATURES)

    async def get_models(self, request: Request) -> Response:
        folder = request.path_params.get("folder")
        if folder is None:
            return JSONResponse(sorted(MODELS))
        if folder not in MODELS:
            return Response(status_code=404)
        return JSONResponse(MODELS[folder])

    async def get_view(self, request: Request) -> Response:
        return await files.view(request, self.folders)

    async def post_upload(self, request: Request) -> Response:
        return await files.upload(request, self.folders)

    # -- the page (ComfyUI's --front-end-root) --------------------------------------------

    async def get_index(self, request: Request) -> Response:
        root = self.config.front_end_root
        assert root is not None  # the route exists only with a front-end root
        return FileResponse(root / "index.html", media_type="text/html", headers=_INDEX_HEADERS)

    async def get_static(self, request: Request) -> Response:
        """A file below the front-end root (relative URLs of the page land here)."""
        root = self.config.front_end_root
        assert root is not None
        target = await asyncio.to_thread(file_inside, root, request.path_params["path"])
        response: Response
        if target is None:
            response = Response(status_code=404, media_type="application/octet-stream")
        else:
            media = _MEDIA_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
            response = FileResponse(target, media_type=media or "application/octet-stream")
        _cache_control(request.url.path, response)
        return response

    # -- /ws ------------------------------------------------------------------------------

    async def ws(self, socket: WebSocket) -> None:
        await socket.accept()
        client = self.sockets.connect(socket, socket.query_params.get("clientId") or None)
        await socket.send_json(
            {"type": "status", "data": {**self.status_data(), "sid": client.sid}}
        )
        # A client that reconnects while its prompt runs learns the node being executed
        # (ComfyUI sends only `node`; a null node would read as "prompt finished").
        running, node = self.state.running, self.sockets.executing.get(client.sid)
        if running is not None and running.client_id == client.sid and node is not None:
            await socket.send_json({"type": "executing", "data": {"node": node}})
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("text") is not None:
                    await self._client_frame(client, message["text"])
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.sockets.disconnect(client)

    async def _client_frame(self, client: Client, message: str) -> None:
        """Feature flags count only in the client's first frame; a frame that is not a JSON
        object does not count as one (ComfyUI skips it before noting the first message)."""
        try:
            frame = json.loads(message)
            kind = frame.get("type")
        except (ValueError, AttributeError):
            return
        first, client.negotiated = not client.negotiated, True
        if first and kind == "feature_flags":
            data = frame.get("data")
            client.features = dict(data) if isinstance(data, dict) else {}
            await client.socket.send_json({"type": "feature_flags", "data": SERVER_FEATURES})

    # -- routes ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        api: list[tuple[str, Handler, list[str]]] = [
            ("/prompt", self.post_prompt, ["POST"]),
            ("/prompt", self.get_prompt, ["GET"]),
            ("/queue", self.get_queue, ["GET"]),
            ("/queue", self.post_queue, ["POST"]),
            ("/history", self.get_history, ["GET"]),
            ("/history", self.post_history, ["POST"]),
            ("/history/{prompt_id}", self.get_history_item, ["GET"]),
            ("/interrupt", self.post_interrupt, ["POST"]),
            ("/free", self.post_free, ["POST"]),
            ("/object_info", self.get_object_info, ["GET"]),
            ("/object_info/{node_class}", self.get_object_info_node, ["GET"]),
            ("/system_stats", self.get_system_stats, ["GET"]),
            ("/features", self.get_features, ["GET"]),
            ("/models", self.get_models, ["GET"]),
            ("/models/{folder}", self.get_models, ["GET"]),
            ("/view", self.get_view, ["GET", "HEAD"]),
            ("/upload/image", self.post_upload, ["POST"]),
            ("/upload/mask", self.post_upload, ["POST"]),
            ("/embeddings", _const([]), ["GET"]),
            ("/extensions", _const([]), ["GET"]),
        ]
        routes: list[BaseRoute] = []
        for path, handler, methods in api:
            routes.append(Route(path, handler, methods=methods))
            routes.append(Route("/api" + path, handler, methods=methods))
        routes += [
            Route("/api/jobs", self.get_jobs, methods=["GET"]),
            Route("/api/jobs/{job_id}", self.get_job, methods=["GET"]),
            WebSocketRoute("/ws", self.ws),
        ]
        if self.config.front_end_root is not None:
            # Last, as ComfyUI adds its static route after the API: a route always wins.
            routes += [
                Route("/", self.get_index, methods=["GET"]),
                Route("/{path:path}", self.get_static, methods=["GET"]),
            ]
        return routes


async def _not_found(request: Request, exc: Exception) -> Response:
    """aiohttp's answer for a path without a route: 404, empty."""
    return Response(status_code=404, media_type="application/octet-stream")


def _cache_control(path: str, response: Response) -> None:
    """ComfyUI's cache middleware, for a static file's answer."""
    name = path.rsplit("/", 1)[-1]
    entry_point = name.startswith("index") and name.endswith(".json")
    if path.endswith((".js", ".css")) or entry_point:
        response.headers.setdefault("Cache-Control", "no-cache")
    elif path.lower().endswith(_IMAGE_SUFFIXES) and response.status_code in (200, 404):
        age = 86400 if response.status_code == 200 else 3600
        response.headers.setdefault("Cache-Control", f"public, max-age={age}")


def _crash() -> Response:
    """What aiohttp answers when ComfyUI's handler raises (post_prompt_error_not_json)."""
    return PlainTextResponse(
        "500 Internal Server Error\n\nServer got itself in trouble", status_code=500
    )


def _const(value: Any) -> Handler:
    async def handler(request: Request) -> Response:
        return JSONResponse(value)

    return handler


def _error(status: int, type_: str, message: str, details: str) -> Response:
    error = {"type": type_, "message": message, "details": details, "extra_info": {}}
    return JSONResponse({"error": error, "node_errors": {}}, status)


async def _json_or_empty(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def create_app(base: Path, config: SimulatorConfig | None = None) -> Starlette:
    sim = Simulator(base, config or SimulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runner = asyncio.create_task(sim.run_queue(), name="simulator-queue")
        try:
            yield
        finally:
            runner.cancel()
            await asyncio.wait({runner})

    app = Starlette(routes=sim.routes(), lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.simulator = sim
    return app
