"""Runs one accepted prompt the way ComfyUI does: order, cache, node calls, and the WebSocket
events of a run (`execution_start` ... `execution_success|error|interrupted`), as recorded in
shared/comfyui-reference/captures (ws_run_*.json)."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from PIL import Image as PILImage

from queue_manager.comfy.frames import text_frame
from worker.simulator.naming import next_save_filename
from worker.simulator.runtime import (
    Interrupted,
    NodeResult,
    SimulatorConfig,
    UnsupportedNode,
)

Outcome = Literal["success", "error", "interrupted"]


class Sink(Protocol):
    """Where a run's events go: the simulator's sockets."""

    async def send_json(self, type_: str, data: dict[str, Any], to: str | None) -> None:
        """To one socket (`to` = its sid) or, with None, to every socket."""

    async def send_preview(
        self, image: bytes, fmt: str, meta: dict[str, Any], to: str | None
    ) -> None:
        """A preview image, framed per receiving socket (type 1 or 4)."""

    async def send_binary(self, payload: bytes, to: str | None) -> None: ...


@dataclass
class RunResult:
    outcome: Outcome
    outputs: dict[str, dict[str, list[Any]]]
    messages: list[list[Any]]
    start_ms: int
    end_ms: int = 0


@dataclass
class _Cached:
    signature: str
    result: NodeResult


@dataclass
class Executor:
    object_info: Mapping[str, Any]
    nodes: Mapping[str, Any]  # class_type -> async impl(ctx, **inputs)
    config: SimulatorConfig
    output_dir: Path
    temp_dir: Path
    input_dir: Path
    sink: Sink
    _cache: dict[str, _Cached] = field(default_factory=dict)

    async def run(
        self,
        prompt_id: str,
        prompt: Mapping[str, Any],
        outputs: list[str],
        client_id: str | None,
        interrupt: asyncio.Event,
        extra_data: Mapping[str, Any] | None = None,
    ) -> RunResult:
        run = _Run(self, prompt_id, prompt, outputs, client_id, interrupt)
        run.extra_data = dict(extra_data or {})
        return await run.execute()


def _ms() -> int:
    return int(time.time() * 1000)


class _Run:
    def __init__(
        self,
        ex: Executor,
        prompt_id: str,
        prompt: Mapping[str, Any],
        outputs: list[str],
        client_id: str | None,
        interrupt: asyncio.Event,
    ) -> None:
        self.ex = ex
        self.prompt_id = prompt_id
        self.prompt = prompt
        self.client_id = client_id
        self.interrupt = interrupt
        self.order = _discovery_order(prompt, outputs)
        self.values: dict[str, tuple[Any, ...]] = {}
        self.ui: dict[str, dict[str, list[Any]]] = {}
        self.executed: list[str] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.messages: list[list[Any]] = []
        self.extra_data: dict[str, Any] = {}
        self.result = RunResult("success", self.ui, self.messages, _ms())

    # -- events ---------------------------------------------------------------------------

    async def job_event(self, type_: str, data: dict[str, Any], *, record: bool = False) -> None:
        """Per-job messages go to the prompt's client only, and nowhere without one."""
        if record:
            self.messages.append([type_, data])
        if self.client_id is not None:
            await self.ex.sink.send_json(type_, data, self.client_id)

    async def progress_event(self, type_: str, data: dict[str, Any]) -> None:
        """Progress goes to the prompt's client, or to everyone when it has none."""
        await self.ex.sink.send_json(type_, data, self.client_id)

    async def send_state(self) -> None:
        await self.progress_event(
            "progress_state", {"prompt_id": self.prompt_id, "nodes": dict(self.states)}
        )

    def set_state(self, node_id: str, state: str, value: float, maximum: float) -> None:
        self.states[node_id] = {
            "value": value,
            "max": maximum,
            "state": state,
            "node_id": node_id,
            "prompt_id": self.prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }

    # -- the run --------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        signatures = {n: _signature(self.prompt, n, self.ex.input_dir) for n in self.order}
        cached = [n for n in self.order if self._cache_hit(n, signatures[n])]
        await self.job_event(
            "execution_start", {"prompt_id": self.prompt_id, "timestamp": _ms()}, record=True
        )
        await self.job_event(
            "execution_cached",
            {"nodes": cached, "prompt_id": self.prompt_id, "timestamp": _ms()},
            record=True,
        )
        # Cached nodes are settled first, in discovery order (ws_run_fully_cached.json).
        for node_id in cached:
            await self._replay_cached(node_id)
        pending = [n for n in self.order if n not in cached]
        while pending:
            node_id = self._pick(pending)
            pending.remove(node_id)
            if self.interrupt.is_set():
                # ComfyUI announces the next node, then its interrupt check stops it.
                self.set_state(node_id, "running", 0.0, 1.0)
                await self.send_state()
                await self.job_event(
                    "executing",
                    {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id},
                )
                return await self._interrupted(node_id)
            try:
                await self._execute_node(node_id, signatures[node_id])
            except Interrupted:
                return await self._interrupted(node_id)
            except Exception as exc:  # a node's failure is the run's result, not ours
                return await self._failed(node_id, exc)
        await self.job_event(
            "execution_success", {"prompt_id": self.prompt_id, "timestamp": _ms()}, record=True
        )
        self.result.end_ms = _ms()
        return self.result

    def _cache_hit(self, node_id: str, signature: str) -> bool:
        hit = self.ex._cache.get(node_id)
        return hit is not None and hit.signature == signature

    def _pick(self, pending: list[str]) -> str:
        """ComfyUI's order: among ready nodes (in discovery order) prefer an output node, then
        a node feeding an output node, then one two steps away, else the first ready one."""
        ready = [n for n in pending if all(d in self.values for d in _deps(self.prompt, n))]
        for hops in (0, 1, 2):
            for n in ready:
                if self._leads_to_output(n, hops):
                    return n
        return ready[0]

    def _leads_to_output(self, node_id: str, hops: int) -> bool:
        if hops == 0:
            return self._is_output(node_id)
        return any(self._leads_to_output(c, hops - 1) for c in _consumers(self.prompt, node_id))

    def _is_output(self, node_id: str) -> bool:
        info = self.ex.object_info.get(self.prompt[node_id]["class_type"], {})
        return bool(info.get("output_node"))

    async def _replay_cached(self, node_id: str) -> None:
        cached = self.ex._cache[node_id].result
        self.values[node_id] = cached.outputs
        if cached.ui is not None:
            self.ui[node_id] = cached.ui
            await self.job_event(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": cached.ui,
                    "prompt_id": self.prompt_id,
                },
            )
            self.set_state(node_id, "finished", 1, 1)
            await self.send_state()

    async def _execute_node(self, node_id: str, signature: str) -> None:
        class_type = self.prompt[node_id]["class_type"]
        self.set_state(node_id, "running", 0.0, 1.0)
        await self.send_state()
        await self.job_event(
            "executing", {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id}
        )
        impl = self.ex.nodes.get(class_type)
        if impl is None:
            raise UnsupportedNode(f"{class_type} cannot run in the ComfyUI simulator")
        ctx = _Context(self, node_id, class_type)
        result: NodeResult = await impl(ctx, **self._inputs(node_id))
        await ctx.flush()
        self.values[node_id] = result.outputs
        self.ex._cache[node_id] = _Cached(signature, result)
        self.executed.append(node_id)
        if result.ui is not None:
            self.ui[node_id] = result.ui
            await self.job_event(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": result.ui,
                    "prompt_id": self.prompt_id,
                },
            )
        state = self.states[node_id]
        self.set_state(node_id, "finished", state["max"], state["max"])
        await self.send_state()

    def _inputs(self, node_id: str) -> dict[str, Any]:
        class_type = self.prompt[node_id]["class_type"]
        spec = _input_spec(self.ex.object_info, class_type)
        hidden = self.ex.object_info.get(class_type, {}).get("input", {}).get("hidden", {})
        out: dict[str, Any] = {}
        # ComfyUI's hidden inputs: the save nodes embed the prompt and workflow in their files.
        if "prompt" in hidden:
            out["prompt"] = self.prompt
        if "extra_pnginfo" in hidden:
            out["extra_pnginfo"] = self.extra_data.get("extra_pnginfo")
        for name, value in self.prompt[node_id].get("inputs", {}).items():
            if _is_link(value):
                out[name] = self.values[str(value[0])][int(value[1])]
            else:
                out[name] = _convert(value, spec.get(name))
        return out

    async def _failed(self, node_id: str, exc: Exception) -> RunResult:
        node = self.prompt[node_id]
        data = {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": node["class_type"],
            "executed": list(self.executed),
            "exception_message": f"{exc}\n",
            "exception_type": _type_name(exc),
            "traceback": traceback.format_tb(exc.__traceback__),
            "current_inputs": {
                k: [v if isinstance(v, (str, int, float, bool)) else repr(v)]
                for k, v in node.get("inputs", {}).items()
                if not _is_link(v)
            },
            "current_outputs": list(self.values),
            "timestamp": _ms(),
        }
        await self.job_event("execution_error", data, record=True)
        self.result.outcome = "error"
        self.result.end_ms = _ms()
        return self.result

    async def _interrupted(self, node_id: str) -> RunResult:
        data = {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.prompt[node_id]["class_type"],
            "executed": list(self.executed),
            "timestamp": _ms(),
        }
        self.messages.append(["execution_interrupted", data])
        # Broadcast when the prompt has no client, like ComfyUI.
        await self.ex.sink.send_json("execution_interrupted", data, self.client_id)
        self.result.outcome = "interrupted"
        self.ui.clear()
        self.result.end_ms = _ms()
        return self.result


class _Context:
    """The NodeContext a node implementation sees (see runtime.py)."""

    def __init__(self, run: _Run, node_id: str, class_type: str) -> None:
        self._run = run
        self.prompt_id = run.prompt_id
        self.node_id = node_id
        self.class_type = class_type
        self.config = run.ex.config
        self.output_dir = run.ex.output_dir
        self.temp_dir = run.ex.temp_dir
        self.input_dir = run.ex.input_dir
        self._pending_progress: dict[str, Any] | None = None

    async def progress(self, value: int, maximum: int) -> None:
        self.check_interrupted()
        await self.flush()
        self._run.set_state(self.node_id, "running", value, maximum)
        await self._run.send_state()
        # ComfyUI sends the step's preview between progress_state and progress: hold the
        # `progress` until the node's preview (or its next step, or its end).
        self._pending_progress = {
            "value": value,
            "max": maximum,
            "prompt_id": self.prompt_id,
            "node": self.node_id,
        }

    async def preview(self, image: PILImage.Image) -> None:
        data = await asyncio.to_thread(_encode_jpeg, image)
        meta = {
            "node_id": self.node_id,
            "prompt_id": self.prompt_id,
            "display_node_id": self.node_id,
            "parent_node_id": None,
            "real_node_id": self.node_id,
            "image_type": "image/jpeg",
        }
        await self._run.ex.sink.send_preview(data, "JPEG", meta, self._run.client_id)
        await self.flush()

    async def text(self, text: str) -> None:
        await self._run.ex.sink.send_binary(text_frame(self.node_id, text), None)

    async def flush(self) -> None:
        if self._pending_progress is not None:
            data, self._pending_progress = self._pending_progress, None
            await self._run.progress_event("progress", data)

    def check_interrupted(self) -> None:
        if self._run.interrupt.is_set():
            raise Interrupted

    def next_filename(self, folder: Path, prefix: str, extension: str) -> tuple[str, str]:
        return next_save_filename(folder, prefix, extension)


# -- graph helpers (pure) ---------------------------------------------------------------------


def _is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _deps(prompt: Mapping[str, Any], node_id: str) -> list[str]:
    return [str(v[0]) for v in prompt[node_id].get("inputs", {}).values() if _is_link(v)]


def _consumers(prompt: Mapping[str, Any], node_id: str) -> list[str]:
    return [n for n in prompt if node_id in _deps(prompt, n)]


def _discovery_order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """Nodes needed by the outputs, in the order ComfyUI discovers them (output first, then
    its inputs depth-first)."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        order.append(node_id)
        for dep in _deps(prompt, node_id):
            visit(dep)

    for out in outputs:
        visit(out)
    return order


def _signature(prompt: Mapping[str, Any], node_id: str, input_dir: Path) -> str:
    """What decides whether a node's cached result can be reused: its inputs, recursively,
    and for file-loading nodes the file's identity (ComfyUI's IS_CHANGED)."""
    node = prompt[node_id]
    parts: dict[str, Any] = {"class_type": node["class_type"]}
    for name, value in sorted(node.get("inputs", {}).items()):
        if _is_link(value):
            parts[name] = [_signature(prompt, str(value[0]), input_dir), value[1]]
        else:
            parts[name] = value
            if node["class_type"] == "LoadImage" and name == "image":
                parts["_file"] = _file_token(input_dir, str(value))
    return json.dumps(parts, sort_keys=True, default=str)


def _file_token(input_dir: Path, name: str) -> list[int]:
    path = input_dir / name.removesuffix(" [input]")
    try:
        st = path.stat()
    except OSError:
        return [0, 0]
    return [st.st_mtime_ns, st.st_size]


def _input_spec(object_info: Mapping[str, Any], class_type: str) -> dict[str, Any]:
    info = object_info.get(class_type, {}).get("input", {})
    return {**info.get("required", {}), **info.get("optional", {})}


def _convert(value: Any, spec: Any) -> Any:
    kind = spec[0] if isinstance(spec, list) and spec else None
    if kind == "INT":
        return int(value)
    if kind == "FLOAT":
        return float(value)
    if kind == "BOOLEAN" and isinstance(value, str):
        return value.lower() == "true"
    return value


def _type_name(exc: BaseException) -> str:
    module = type(exc).__module__
    name = type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def _encode_jpeg(image: PILImage.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()
