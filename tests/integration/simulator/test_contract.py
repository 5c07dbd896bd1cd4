"""Contract test: the simulator against every recorded exchange of a real ComfyUI 0.25.0.

`tests/data/comfyui-reference/captures/comfyui-0.25.0/` holds one JSON file per HTTP exchange and
per WebSocket session, recorded from a real server in one capture session (plus a short second
one for progress text). Most of them only make sense in the state that session had built:
uploads before LoadImage runs, finished runs before `/history/{id}`, a held queue before
`GET /queue`. So the test replays the session itself against a fresh simulator, in the same
order, and compares every answer with its recording:

* HTTP: status code, the headers Content-Type, Content-Disposition, Accept-Ranges and
  Content-Range, and the body: JSON recursively (same keys, same value types, and the same
  values except where they depend on time or on the server's paths), text exactly, binary by
  kind (PNG/JPEG/WEBP) and, for empty and ranged answers, by length.
* WebSocket: every frame in order (types, and the data of each frame as for JSON bodies), from
  the first `status` (with its `sid`) and the feature-flags reply on.

Prompt ids the server generated are mapped from the recorded ones to the simulator's (learned
from the `POST /prompt` answers), and so are the five random letters of preview file names
(learned from the `executed` frames); paths under the simulator's folders read as
`<COMFYUI_ROOT>`, as in the captures. Nothing waits by sleeping: the runs are held at chosen
nodes by gates (so "a busy queue" is a state, not a race) and sockets are read until a frame
that marks the end (`executing` with `node: null`, or a barrier reply).

`CONTRACT` says, for each replayed capture, in which phase of the session it is replayed and
how it is compared; `KNOWN_MISMATCHES` lists the captures that are not replayed, with why the
difference is acceptable. Every capture file must be in exactly one of the two.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import enum
import io
import json
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from PIL import Image
from websockets.asyncio.client import ClientConnection

from tests.support import captures
from tests.support.captures import CAPTURES
from tests.support.simulator import RunningSimulator, serve_simulator
from worker.simulator.nodes import NODES
from worker.simulator.runtime import NodeContext, NodeResult, SimulatorConfig

WAIT = 10.0  # seconds: the deadline for anything the session waits for (never a sleep)

Json = Any
Frame = dict[str, Any] | bytes


class Phase(enum.Enum):
    """Where in the replayed session a capture is replayed (the state it needs)."""

    FRESH = "session A: a fresh server (ComfyUI ships input/example.png)"
    SOCKETS = "session A: sockets opened on the idle server"
    UPLOADS = "session A: the uploads, in recorded order"
    RUNS = "session A: each recorded run with its socket, in recorded order"
    BUSY = "session A: five prompts queued, the running ones held at a node by a gate"
    DONE = "session A: every run finished (history, jobs, /view of their files)"
    SESSION_B = "session B: a second fresh server running GetImageSize + PreviewAny"


Check = Callable[["Session", "Seen"], Awaitable[list[str]]]
Transform = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    phase: Phase
    # JSON paths ("/"-joined keys, fnmatch patterns) compared by JSON type only.
    volatile: tuple[str, ...] = ()
    # Upload captures record only a note: which of UPLOAD_CONTENT the `image` field carries.
    upload: str | None = None
    # Compare only the recorded top-level keys (a recorded subset of a larger body).
    subset: bool = False
    compare_body: bool = True
    # Applied to the recorded WebSocket events before comparing (a documented tolerance).
    recorded_events: Transform | None = None
    check: Check | None = None  # more assertions, run right after the replay


# -- values that depend on time, on ids, on the machine ------------------------------------------

VOLATILE_KEYS = frozenset(
    {
        "timestamp",
        "create_time",
        "execution_start_time",
        "execution_end_time",
        # Lines of the server's own Python stack: another program, other lines.
        "traceback",
        # ComfyUI lists its output cache's node-id *set* here (every node of the prompt, in
        # set order); the simulator lists the nodes it has outputs for.
        "current_outputs",
    }
)
# The simulator offers the model files the frontends' default graphs name (server.MODELS);
# the recorded server had none.
MODEL_COMBOS = (
    "CheckpointLoaderSimple/input/required/ckpt_name/0",
    "UNETLoader/input/required/unet_name/0",
    "CLIPLoader/input/required/clip_name/0",
    "VAELoader/input/required/vae_name/0",
)
# Numbers that describe the machine the recording ran on.
MACHINE = (
    "system/os",
    "system/ram_*",
    "system/python_version",
    "system/pytorch_version",
    "system/argv",
    "system/deploy_environment",
    "system/comfy_package_versions",
    "devices/*/name",
    "devices/*/*vram*",
)
# Lists compared as sets: ComfyUI makes `outputs_to_execute` (item 4 of a queue or history
# `prompt` entry) from a set, so their order changes from process to process; and it lists
# `execution_cached` nodes in prompt order where the simulator's executor lists them in the
# order it discovers them (no client uses that order).
UNORDERED = ("*/prompt/4", "queue_*/*/4", "*/nodes")
# Ids and names the server makes up: recorded -> simulator, learned during the session.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PREVIEW_PREFIX = re.compile(r"ComfyUI_temp_[a-z]{5}_")


# -- extra checks ---------------------------------------------------------------------------------


async def _check_node_names(session: Session, seen: Seen) -> list[str]:
    recorded = capture("object_info.node_names.json")
    info = json.loads(seen.body)
    modules: dict[str, list[str]] = {}
    for name, node in info.items():
        modules.setdefault(node["python_module"], []).append(name)
    derived = {
        "count": len(info),
        "names": sorted(info),
        "by_python_module": {m: sorted(names) for m, names in modules.items()},
    }
    expected = {k: recorded[k] for k in derived}
    expected["by_python_module"] = {m: sorted(n) for m, n in expected["by_python_module"].items()}
    return diff(expected, derived)


async def _check_mask_merge(session: Session, seen: Seen) -> list[str]:
    """`original_ref`: the stored mask is the referenced picture with the mask's alpha."""
    body = json.loads(seen.body)
    r = await session.http.get(
        "/view", params={"filename": body["name"], "subfolder": body["subfolder"], "type": "input"}
    )
    if r.status_code != 200:
        return [f"GET /view of the stored mask: {r.status_code}"]
    with Image.open(io.BytesIO(r.content)) as stored:
        merged = stored.convert("RGBA")
    with Image.open(io.BytesIO(UPLOAD_CONTENT["third picture"])) as original:
        rgb = original.convert("RGB")
    with Image.open(io.BytesIO(UPLOAD_CONTENT["mask"])) as mask:
        alpha = mask.convert("RGBA").getchannel("A")
    problems = []
    if merged.convert("RGB").tobytes() != rgb.tobytes():
        problems.append("stored mask: colours are not the original picture's")
    if merged.getchannel("A").tobytes() != alpha.tobytes():
        problems.append("stored mask: alpha is not the uploaded mask's alpha")
    return problems


async def _check_duration_order(session: Session, seen: Seen) -> list[str]:
    """Which jobs are shortest depends on how long they ran: check the order, not the ids."""
    recorded = capture("get_api_jobs_sorted_duration.json")["response"]["body"]["json"]
    body = json.loads(seen.body)
    problems = diff(recorded["pagination"], body["pagination"])
    everything = (await session.http.get("/api/jobs")).json()["jobs"]
    durations = sorted(_duration(job) for job in everything)
    if [_duration(job) for job in body["jobs"]] != durations[1:3]:
        problems.append(f"jobs are not the 2nd and 3rd shortest: {body['jobs']}")
    return problems


def _duration(job: dict[str, Any]) -> float:
    start, end = job.get("execution_start_time"), job.get("execution_end_time")
    return float(end - start) if start is not None and end is not None else -1.0


async def _check_generated_sid(session: Session, seen: Seen) -> list[str]:
    first = seen.frames[0] if seen.frames else None
    sid = first["data"].get("sid") if isinstance(first, dict) else None
    ok = isinstance(sid, str) and re.fullmatch(r"[0-9a-f]{32}", sid)
    return [] if ok else [f"first frame should carry a uuid4-hex sid: {first!r}"]


# -- the tables ---------------------------------------------------------------------------------

CONTRACT: dict[str, Case] = {
    # A fresh server.
    "get_queue_idle.json": Case(Phase.FRESH),
    "get_prompt_idle.json": Case(Phase.FRESH),
    "get_history_empty.json": Case(Phase.FRESH),
    "get_history_item_unknown.json": Case(Phase.FRESH),
    "get_features.json": Case(Phase.FRESH),
    "get_api_features.json": Case(Phase.FRESH),
    "get_system_stats.json": Case(Phase.FRESH, volatile=MACHINE),
    "get_api_system_stats.json": Case(Phase.FRESH, volatile=MACHINE),
    "object_info.full.json": Case(Phase.FRESH, volatile=MODEL_COMBOS),
    "object_info.used_nodes.json": Case(Phase.FRESH, volatile=MODEL_COMBOS, subset=True),
    "object_info.node_names.json": Case(Phase.FRESH, compare_body=False, check=_check_node_names),
    "get_api_object_info_loadimage.json": Case(Phase.FRESH),
    "get_object_info_single_node.json": Case(Phase.FRESH),
    "get_object_info_unknown_node.json": Case(Phase.FRESH),
    "get_embeddings.json": Case(Phase.FRESH),
    "get_models_unknown_folder.json": Case(Phase.FRESH),
    "get_api_unknown_path.json": Case(Phase.FRESH),
    "get_unknown_subpath.json": Case(Phase.FRESH),
    "get_jobs_without_api_prefix.json": Case(Phase.FRESH),
    "get_api_jobs_bad_status.json": Case(Phase.FRESH),
    "get_api_jobs_bad_limit.json": Case(Phase.FRESH),
    "get_api_jobs_item_unknown.json": Case(Phase.FRESH),
    "get_view_no_filename.json": Case(Phase.FRESH),
    "get_view_missing_file.json": Case(Phase.FRESH),
    # Sockets on the idle server.
    "ws_connect_without_client_id.json": Case(
        Phase.SOCKETS, volatile=("0/data/sid",), check=_check_generated_sid
    ),
    "ws_connect_with_feature_flags.json": Case(Phase.SOCKETS),
    "ws_feature_flags_not_first.json": Case(Phase.SOCKETS),
    # Uploads.
    "post_upload_image_new.json": Case(Phase.UPLOADS, upload="picture"),
    "post_upload_image_same_name_same_bytes.json": Case(Phase.UPLOADS, upload="picture"),
    "post_upload_image_same_name_different_bytes.json": Case(Phase.UPLOADS, upload="other picture"),
    "post_upload_image_overwrite_true.json": Case(Phase.UPLOADS, upload="third picture"),
    "post_upload_image_subfolder.json": Case(Phase.UPLOADS, upload="sub picture"),
    "post_upload_image_type_temp.json": Case(Phase.UPLOADS, upload="temp picture"),
    "post_upload_image_not_an_image.json": Case(Phase.UPLOADS, upload="not an image"),
    "post_upload_image_missing_file.json": Case(Phase.UPLOADS),
    "post_upload_mask.json": Case(Phase.UPLOADS, upload="mask", check=_check_mask_merge),
    "get_object_info_loadimage_after_uploads.json": Case(Phase.UPLOADS),
    # The runs, each with the socket it was recorded on.
    "ws_bystander_socket.json": Case(Phase.RUNS),
    "ws_run_success.json": Case(Phase.RUNS),
    "post_prompt_success.json": Case(Phase.RUNS),
    "ws_run_fully_cached.json": Case(Phase.RUNS),
    "post_prompt_cached.json": Case(Phase.RUNS),
    "ws_run_without_client_id.json": Case(Phase.RUNS),
    "post_prompt_without_client_id.json": Case(Phase.RUNS),
    "ws_run_loadimage.json": Case(Phase.RUNS),
    "post_prompt_loadimage.json": Case(Phase.RUNS),
    "ws_validation_errors.json": Case(Phase.RUNS),
    "post_prompt_error_bad_inputs.json": Case(Phase.RUNS),
    "post_prompt_error_type_mismatch.json": Case(Phase.RUNS),
    "post_prompt_error_link_to_missing_node.json": Case(Phase.RUNS),
    "post_prompt_error_unknown_class.json": Case(Phase.RUNS),
    "post_prompt_error_missing_class_type.json": Case(Phase.RUNS),
    "post_prompt_error_no_outputs.json": Case(Phase.RUNS),
    "post_prompt_error_no_prompt.json": Case(Phase.RUNS),
    "post_prompt_error_not_json.json": Case(Phase.RUNS),
    "post_prompt_error_loadimage_missing_file.json": Case(Phase.RUNS),
    "post_prompt_error_non_uuid_prompt_id.json": Case(Phase.RUNS),
    "post_prompt_partially_valid.json": Case(Phase.RUNS),
    "ws_run_execution_error.json": Case(Phase.RUNS),
    "post_prompt_exec_failure_accepted.json": Case(Phase.RUNS),
    "post_prompt_ws_images_legacy.json": Case(Phase.RUNS),
    "post_prompt_ws_images_metadata.json": Case(Phase.RUNS),
    # A busy queue: slow_1 running, four pending; then interrupts, delete, clear.
    "ws_queue_and_interrupt.json": Case(Phase.BUSY),
    "post_prompt_slow_1.json": Case(Phase.BUSY),
    "post_prompt_slow_2.json": Case(Phase.BUSY),
    "post_prompt_slow_3.json": Case(Phase.BUSY),
    "post_prompt_front_true.json": Case(Phase.BUSY),
    "post_prompt_explicit_number_and_prompt_id.json": Case(Phase.BUSY),
    "get_queue_busy.json": Case(Phase.BUSY),
    "get_prompt_busy.json": Case(Phase.BUSY),
    "get_api_jobs_busy.json": Case(Phase.BUSY),
    "get_api_jobs_item_pending.json": Case(Phase.BUSY),
    "get_api_jobs_item_running.json": Case(Phase.BUSY),
    "post_queue_delete.json": Case(Phase.BUSY),
    "get_queue_after_delete.json": Case(Phase.BUSY),
    "post_interrupt_targeted.json": Case(Phase.BUSY),
    "get_queue_second_running.json": Case(Phase.BUSY),
    "post_interrupt_global_empty_body.json": Case(Phase.BUSY),
    "post_queue_clear.json": Case(Phase.BUSY),
    # Replayed while the explicit 2.5 runs: it must go on (its history says success).
    "post_interrupt_not_running.json": Case(Phase.BUSY),
    # After the session (replayed in this order).
    "get_history_item_success.json": Case(Phase.DONE),
    "get_api_history_item_success.json": Case(Phase.DONE),
    "get_history_item_cached.json": Case(Phase.DONE),
    "get_history_item_loadimage.json": Case(Phase.DONE),
    "get_history_item_partially_valid.json": Case(Phase.DONE),
    "get_history_item_failed.json": Case(Phase.DONE),
    "get_history_item_interrupted.json": Case(Phase.DONE),
    "get_history_listing.json": Case(Phase.DONE),
    "get_history_max_items_2.json": Case(Phase.DONE),
    "get_history_max_items_1_offset_1.json": Case(Phase.DONE),
    "get_api_jobs_all.json": Case(Phase.DONE),
    "get_api_jobs_completed_failed_limit3.json": Case(Phase.DONE),
    "get_api_jobs_sorted_duration.json": Case(
        Phase.DONE, compare_body=False, check=_check_duration_order
    ),
    "get_api_jobs_item_success.json": Case(Phase.DONE),
    "get_api_jobs_item_failed.json": Case(Phase.DONE),
    "get_api_jobs_item_interrupted.json": Case(Phase.DONE),
    "get_view_output_png.json": Case(Phase.DONE),
    "get_api_view_output_png.json": Case(Phase.DONE),
    "head_view_output_png.json": Case(Phase.DONE),
    "get_view_output_range.json": Case(Phase.DONE),
    "get_view_default_type_output.json": Case(Phase.DONE),
    "get_view_annotated_filename.json": Case(Phase.DONE),
    "get_view_temp_preview.json": Case(Phase.DONE),
    "get_view_preview_jpeg.json": Case(Phase.DONE),
    "get_view_preview_webp.json": Case(Phase.DONE),
    "get_view_channel_rgb.json": Case(Phase.DONE),
    "get_view_channel_a.json": Case(Phase.DONE),
    "get_view_input_upload.json": Case(Phase.DONE),
    "get_view_input_subfolder.json": Case(Phase.DONE),
    "get_view_input_non_image.json": Case(Phase.DONE),
    "get_view_not_found.json": Case(Phase.DONE),
    "get_view_bad_type.json": Case(Phase.DONE),
    "get_view_dotdot_filename.json": Case(Phase.DONE),
    "get_view_subfolder_traversal.json": Case(Phase.DONE),
    "post_free.json": Case(Phase.DONE),
    "post_history_delete.json": Case(Phase.DONE),
    "get_history_item_after_delete.json": Case(Phase.DONE),
    # Session B.
    "ws_run_progress_text_and_text_output.json": Case(Phase.SESSION_B),
    "ws_run_progress_text_bystander.json": Case(Phase.SESSION_B),
    "post_prompt_progress_text.json": Case(Phase.SESSION_B),
    "get_history_item_text_output.json": Case(Phase.SESSION_B),
}

_FRONTEND = (
    "the official web frontend's own data; the simulator is a ComfyUI for our worker agent "
    "and serves no frontend"
)
_USERDATA = f"/userdata (per-user workflow files): {_FRONTEND}"
_SETTINGS = f"/settings: {_FRONTEND}"
_INTERNAL = (
    "/internal/* (server folders, file listings, logs) is ComfyUI's frontend-only sub-app; "
    "the worker agent reads outputs from history and /view"
)
_WS_IMAGES = (
    "SaveImageWebsocket (ComfyUI's bundled custom node) is listed in the simulator's "
    "object_info but worker/simulator/nodes has no implementation, so the run cannot send its "
    "images; the session runs the prompt with a stand-in node only so that history and jobs "
    "stay as recorded (test_preview_frames_follow_each_sockets_negotiation checks what the "
    "stand-in's previews can show: the frame kind each socket negotiated)"
)
KNOWN_MISMATCHES: dict[str, str] = {
    "delete_userdata_file.json": _USERDATA,
    "get_userdata_file.json": _USERDATA,
    "get_userdata_workflows_full_info.json": _USERDATA,
    "get_userdata_workflows_missing.json": _USERDATA,
    "get_userdata_workflows_plain.json": _USERDATA,
    "get_userdata_workflows_split.json": _USERDATA,
    "get_v2_userdata_root.json": _USERDATA,
    "get_v2_userdata_workflows.json": _USERDATA,
    "post_userdata_file.json": _USERDATA,
    "post_userdata_file_conflict.json": _USERDATA,
    "post_userdata_file_full_info.json": _USERDATA,
    "post_userdata_move.json": _USERDATA,
    "get_settings.json": _SETTINGS,
    "get_settings_after_post.json": _SETTINGS,
    "get_setting_single_after_post.json": _SETTINGS,
    "get_setting_single_missing.json": _SETTINGS,
    "post_setting_single.json": _SETTINGS,
    "post_settings_bulk.json": _SETTINGS,
    "get_users.json": f"/users (frontend user storage mode): {_FRONTEND}",
    "get_i18n.json": f"/i18n (custom-node translations): {_FRONTEND}",
    "get_workflow_templates.json": f"/workflow_templates: {_FRONTEND}",
    "get_templates_index_json.json": f"/templates/index.json (template browser): {_FRONTEND}",
    "get_root_index_html.json": f"GET / (the web page): {_FRONTEND}",
    "head_root_index_html.json": f"HEAD / (the web page): {_FRONTEND}",
    "get_extensions.json": (
        "/extensions lists the frontend's JavaScript files; the simulator has none and answers []"
    ),
    "get_api_global_subgraphs.json": f"/global_subgraphs (subgraph blueprints): {_FRONTEND}",
    "get_api_node_replacements.json": f"/node_replacements (graph migration): {_FRONTEND}",
    "get_api_assets.json": "/api/assets is an opt-in ComfyUI feature (503 when disabled)",
    "get_experiment_models.json": (
        "/experiment/models exposes the server's model folder paths; nothing of ours uses it"
    ),
    "get_api_experiment_models_checkpoints.json": (
        "/experiment/models/{folder}: as /experiment/models"
    ),
    "get_models.json": (
        "/models lists ComfyUI's ~30 model folder kinds; the simulator lists only the four "
        "whose (pretended) files the frontends' default graphs need"
    ),
    "get_models_checkpoints.json": (
        "the recorded server had no model files; the simulator pretends to have the default "
        "graphs' checkpoint so that they validate"
    ),
    "get_internal_files_input.json": _INTERNAL,
    "get_internal_files_output_after_runs.json": _INTERNAL,
    "get_internal_files_output_empty.json": _INTERNAL,
    "get_internal_folder_paths.json": _INTERNAL,
    "get_internal_logs_raw.json": _INTERNAL,
    "options_prompt_preflight.json": (
        "CORS preflight: only browsers on another origin send OPTIONS; the simulator is "
        "reached by our worker agent and tests only"
    ),
    "post_prompt_origin_mismatch.json": (
        "ComfyUI's cross-origin guard protects a browser user's local server; the simulator "
        "has no browser users and does not check Origin"
    ),
    "ws_run_binary_frames_legacy.json": _WS_IMAGES,
    "ws_run_binary_frames_metadata.json": _WS_IMAGES,
}

# Known mismatches that session A replays all the same (their sockets, with a stand-in node): the
# kind of preview frame each socket negotiated is still checked
# (test_preview_frames_follow_each_sockets_negotiation), so tests/data keeps them.
STILL_REPLAYED = frozenset(
    {"ws_run_binary_frames_legacy.json", "ws_run_binary_frames_metadata.json"}
)


# -- reading captures ---------------------------------------------------------------------------

_captures: dict[str, Json] = {}


def capture(name: str) -> Json:
    if name not in _captures:
        _captures[name] = captures.capture(name)
    return _captures[name]


def exchange(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, response) of an HTTP capture; the object_info reference files are bodies of
    `GET /object_info`."""
    rec = capture(name)
    if "request" in rec:
        return rec["request"], rec["response"]
    request = {"method": "GET", "path": "/object_info"}
    if name == "object_info.node_names.json":
        return request, {"status": 200, "body": {"kind": "none"}}
    full = capture("object_info.full.json")
    body = {"kind": "json", "json": rec["body"]}
    return request, {"status": full["status"], "headers": full["headers"], "body": body}


def _event_type(event: dict[str, Any]) -> str:
    if event["kind"] == "text":
        return str(event["json"]["type"])
    return f"binary:{event['event_type_u32be']}"


def _frame_type(frame: Frame) -> str:
    if isinstance(frame, bytes):
        return f"binary:{int.from_bytes(frame[:4], 'big')}"
    return str(frame.get("type"))


# -- upload bodies ----------------------------------------------------------------------------


def _png(size: tuple[int, int], paint: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    image = Image.new("RGBA", size)
    image.putdata([paint(x, y) for y in range(size[1]) for x in range(size[0])])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


UPLOAD_CONTENT: dict[str, bytes] = {
    "picture": _png((40, 30), lambda x, y: (200, 10 + x, 10 + y, 255 - 6 * x)),
    "other picture": _png((40, 30), lambda x, y: (10, 200, 5 * y, 255)),
    "third picture": _png((40, 30), lambda x, y: (6 * x, 8 * y, 90, 255 - 8 * y)),
    "sub picture": _png((40, 30), lambda x, y: (30, 60, 90, 255)),
    "temp picture": _png((40, 30), lambda x, y: (90, 60, 30, 128)),
    "mask": _png((40, 30), lambda x, y: (0, 0, 0, 0 if x < 20 else 255)),
    "not an image": b"this is not a png file, it is plain text\n",
}


def _multipart(note: str, content: str | None) -> dict[str, Any]:
    """httpx `files=` for an upload capture, from its note (file name and other fields)."""
    filename = re.search(r"filename='([^']*)'", note)
    fields = re.search(r"other fields: (\{.*\})\s*$", note)
    parts: dict[str, Any] = {}
    for key, value in (ast.literal_eval(fields.group(1)) if fields else {}).items():
        parts[key] = (None, value)
    if filename and content is not None:
        parts["image"] = (filename.group(1), UPLOAD_CONTENT[content], "image/png")
    if not parts:  # "multipart with no 'image' field"
        parts["type"] = (None, "input")
    return parts


# -- comparing ----------------------------------------------------------------------------------


def _json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    for kind, name in ((str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def diff(expected: Json, actual: Json, volatile: tuple[str, ...] = (), path: str = "") -> list[str]:
    """Differences between two JSON values: keys recursively, types, and values except at
    VOLATILE_KEYS and the `volatile` paths, where only the JSON type must agree."""
    where = path or "/"
    key = path.rpartition("/")[2]
    if key in VOLATILE_KEYS or any(fnmatchcase(path.lstrip("/"), p) for p in volatile):
        if _json_type(expected) == _json_type(actual):
            return []
        return [f"{where}: a {_json_type(expected)} expected, got {_short(actual)}"]
    if _json_type(expected) != _json_type(actual):
        return [f"{where}: expected {_short(expected)}, got {_short(actual)}"]
    if isinstance(expected, dict):
        out = []
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing:
            out.append(f"{where}: missing keys {missing}")
        if extra:
            out.append(f"{where}: unexpected keys {extra}")
        for k in expected:
            if k in actual:
                out += diff(expected[k], actual[k], volatile, f"{path}/{k}")
        return out
    if isinstance(expected, list):
        if any(fnmatchcase(path.lstrip("/"), p) for p in UNORDERED):
            expected, actual = (sorted(v, key=json.dumps) for v in (expected, actual))
        out = []
        if len(expected) != len(actual):
            out.append(f"{where}: {len(expected)} items expected, got {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            out += diff(e, a, volatile, f"{path}/{i}")
        return out
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def _short(value: Json) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _canonical(body: Json) -> Json:
    """ComfyUI lists a node's input errors in Python set order, which changes with every server
    process (post_prompt_error_bad_inputs): sort them on both sides."""
    if isinstance(body, dict):
        out = {k: _canonical(v) for k, v in body.items()}
        if isinstance(out.get("node_errors"), dict):
            for node in out["node_errors"].values():
                if isinstance(node, dict) and isinstance(node.get("errors"), list):
                    node["errors"].sort(key=lambda e: json.dumps(e, sort_keys=True))
        return out
    if isinstance(body, list):
        return [_canonical(v) for v in body]
    return body


_COMPARED_HEADERS = ("content-type", "content-disposition", "accept-ranges", "content-range")


def _magic(data: bytes) -> str | None:
    for prefix, kind in ((b"\x89PNG", "png"), (b"\xff\xd8", "jpeg"), (b"RIFF", "riff(webp?)")):
        if data.startswith(prefix):
            return kind
    return None


# -- the replayed session -----------------------------------------------------------------------


@dataclass
class Seen:
    """What the simulator answered for one capture."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    frames: list[Frame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Replay:
    seen: dict[str, Seen] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # Every socket's frames, known mismatches included.
    frames: dict[str, list[Frame]] = field(default_factory=dict)


class Gate:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def reached(self) -> None:
        await asyncio.wait_for(self.entered.wait(), WAIT)


class Gates:
    """Holds the next run of a node id until released: the state "this prompt is running, at
    this node" for as long as the session needs it, whatever the machine's speed."""

    def __init__(self) -> None:
        self.armed: dict[str, list[Gate]] = {}
        self.all: list[Gate] = []

    def arm(self, node_id: str) -> Gate:
        gate = Gate(node_id)
        self.armed.setdefault(node_id, []).append(gate)
        self.all.append(gate)
        return gate

    def release_all(self) -> None:
        for gate in self.all:
            gate.opened.set()

    def wrap(self, impl: Callable[..., Awaitable[NodeResult]]) -> Callable[..., Any]:
        async def run(ctx: NodeContext, /, **inputs: Any) -> NodeResult:
            waiting = self.armed.get(ctx.node_id)
            if waiting:
                gate = waiting.pop(0)
                gate.entered.set()
                await gate.opened.wait()
            return await impl(ctx, **inputs)

        return run


async def _save_image_websocket(ctx: NodeContext, /, **inputs: Any) -> NodeResult:
    """Stand-in for ComfyUI's bundled SaveImageWebsocket (see KNOWN_MISMATCHES): one progress
    step and preview per image, no UI output."""
    images = inputs["images"]
    for step, image in enumerate(images):
        await ctx.progress(step, len(images))
        await ctx.preview(image)
    return NodeResult()


class Session:
    def __init__(
        self, name: str, sim: RunningSimulator, http: httpx.AsyncClient, replay: Replay
    ) -> None:
        self.name = name
        self.sim = sim
        self.http = http
        self.replay = replay
        self.aliases: dict[str, str] = {}
        self.roots = sorted({str(sim.base), str(sim.base.resolve())}, key=len, reverse=True)
        self.gates = Gates()
        nodes: dict[str, Any] = dict(NODES)
        nodes.setdefault("SaveImageWebsocket", _save_image_websocket)
        sim.sim.executor.nodes = {k: self.gates.wrap(v) for k, v in nodes.items()}

    # -- ids ----------------------------------------------------------------------------------

    def rewrite(self, value: Json) -> Json:
        """A recorded value with the recorded ids and names replaced by the simulator's."""
        if isinstance(value, str):
            for recorded, ours in self.aliases.items():
                value = value.replace(recorded, ours)
            return value
        if isinstance(value, dict):
            return {self.rewrite(k): self.rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.rewrite(v) for v in value]
        return value

    def normalize(self, value: Json) -> Json:
        """An answer of ours with the simulator's folders written as the captures write them."""
        if isinstance(value, str):
            for root in self.roots:
                value = value.replace(root, "<COMFYUI_ROOT>")
            return value
        if isinstance(value, dict):
            return {k: self.normalize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.normalize(v) for v in value]
        return value

    def learn(self, recorded: Json, ours: Json, patterns: tuple[re.Pattern[str], ...]) -> None:
        if isinstance(recorded, dict) and isinstance(ours, dict):
            for k, v in recorded.items():
                mine = self.rewrite(k)
                if mine in ours:
                    self.learn(v, ours[mine], patterns)
        elif isinstance(recorded, list) and isinstance(ours, list):
            for r, o in zip(recorded, ours, strict=False):
                self.learn(r, o, patterns)
        elif isinstance(recorded, str) and isinstance(ours, str):
            for pattern in patterns:
                r, o = pattern.search(recorded), pattern.search(ours)
                if r and o and r.group() != o.group():
                    self.aliases.setdefault(r.group(), o.group())

    def prompt_id(self, post: str) -> str:
        return str(json.loads(self.replay.seen[post].body)["prompt_id"])

    # -- HTTP ---------------------------------------------------------------------------------

    async def replay_phase(self, phase: Phase) -> None:
        for name, case in CONTRACT.items():
            if case.phase is phase:
                await self.replay_http(name)

    async def replay_http(self, name: str) -> None:
        case = CONTRACT[name]
        request, response = exchange(name)
        kwargs: dict[str, Any] = {"params": self.rewrite(request.get("query"))}
        if request.get("headers"):
            kwargs["headers"] = request["headers"]
        if "json" in request:
            kwargs["json"] = self.rewrite(request["json"])
        elif "raw_body" in request:
            kwargs["content"] = request["raw_body"].encode()
        elif "multipart" in request.get("note", ""):
            kwargs["files"] = _multipart(request["note"], case.upload)
        r = await self.http.request(request["method"], self.rewrite(request["path"]), **kwargs)
        seen = Seen(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)
        body = response["body"]
        if body["kind"] == "json" and response["status"] == r.status_code == 200:
            with contextlib.suppress(ValueError):
                # Prompt ids are learned where the server makes them up, nowhere else.
                patterns = (UUID, PREVIEW_PREFIX) if name.startswith("post_prompt") else ()
                self.learn(body["json"], r.json(), patterns or (PREVIEW_PREFIX,))
        seen.problems = self._compare_http(case, request, response, seen)
        await self._finish(name, case, seen)

    def _compare_http(
        self,
        case: Case,
        request: dict[str, Any],
        response: dict[str, Any],
        seen: Seen,
    ) -> list[str]:
        problems = []
        if seen.status != response["status"]:
            problems.append(f"status: expected {response['status']}, got {seen.status}")
        if "headers" in response:
            recorded = {k.lower(): v for k, v in response["headers"]}
            for header in _COMPARED_HEADERS:
                expected, got = self.rewrite(recorded.get(header)), seen.headers.get(header)
                if header == "content-range":
                    expected, got = (re.sub(r"/\d+$", "/*", v) if v else v for v in (expected, got))
                if expected != got:
                    problems.append(f"header {header}: expected {expected!r}, got {got!r}")
        body = response["body"]
        if not case.compare_body or body["kind"] == "none":
            return problems
        if body["kind"] == "json":
            try:
                ours = json.loads(seen.body)
            except ValueError:
                return [*problems, f"body is not JSON: {seen.body[:200]!r}"]
            expected = self.rewrite(body["json"])
            if case.subset and isinstance(ours, dict):
                ours = {k: v for k, v in ours.items() if k in expected}
            problems += diff(_canonical(expected), _canonical(self.normalize(ours)), case.volatile)
        elif body["kind"] == "text":
            if seen.body.decode(errors="replace") != body.get("text"):
                problems.append(f"body: expected {body.get('text')!r}, got {seen.body[:200]!r}")
        else:
            if _magic(seen.body) != body["magic"]:
                problems.append(f"body: {body['magic']} expected, got {seen.body[:16]!r}")
            elif body["magic"] in ("png", None):
                # PNG: signature and IHDR up to the colour type (size, depth, RGB/RGBA/grey);
                # other files (the uploaded text): their first bytes.
                head = bytes.fromhex(body["first_32_bytes_hex"])[: 26 if body["magic"] else 32]
                if seen.body[: len(head)] != head:
                    problems.append(f"body starts {seen.body[: len(head)]!r}, expected {head!r}")
            exact = body["length"] == 0 or "Range" in request.get("headers", {})
            if exact and len(seen.body) != body["length"]:
                problems.append(f"body: {body['length']} bytes expected, got {len(seen.body)}")
        return problems

    async def _finish(self, name: str, case: Case, seen: Seen) -> None:
        assert name not in self.replay.seen, f"{name} replayed twice"
        self.replay.seen[name] = seen
        if case.check is not None:
            seen.problems += await case.check(self, seen)

    # -- WebSocket ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def socket(self, name: str) -> AsyncIterator[Socket]:
        sock = Socket(self, name)
        await sock.open()
        try:
            yield sock
        finally:
            await sock.close()
        await self._finish_socket(sock)

    async def _finish_socket(self, sock: Socket) -> None:
        case = CONTRACT.get(sock.name)
        events = [e for e in capture(sock.name)["events"] if e["kind"] in ("text", "binary")]
        self._learn_from_frames(events, sock.frames)
        self.replay.frames[sock.name] = sock.frames
        if case is None:  # a known mismatch: run for the session's sake only
            return
        if case.recorded_events is not None:
            events = case.recorded_events(events)
        seen = Seen(frames=sock.frames)
        seen.problems = self._compare_frames(events, sock.frames, case)
        await self._finish(sock.name, case, seen)

    def _learn_from_frames(self, events: list[dict[str, Any]], frames: list[Frame]) -> None:
        ours = {
            (f["data"].get("prompt_id"), f["data"].get("node")): f["data"]
            for f in frames
            if isinstance(f, dict) and f.get("type") == "executed"
        }
        for event in events:
            if event["kind"] == "text" and event["json"]["type"] == "executed":
                data = event["json"]["data"]
                mine = ours.get((self.rewrite(data["prompt_id"]), data["node"]))
                if mine is not None:
                    self.learn(data, mine, (PREVIEW_PREFIX,))

    def _compare_frames(
        self, events: list[dict[str, Any]], frames: list[Frame], case: Case
    ) -> list[str]:
        expected_types = [_event_type(e) for e in events]
        got_types = [_frame_type(f) for f in frames]
        if expected_types != got_types:
            return [f"frame types:\n  expected {expected_types}\n  got      {got_types}"]
        problems = []
        for i, (event, frame) in enumerate(zip(events, frames, strict=True)):
            if isinstance(frame, bytes):
                problems += self._compare_binary(i, event, frame)
            else:
                expected = self.rewrite(event["json"])
                problems += diff(expected, self.normalize(frame), case.volatile, f"{i}")
        return problems

    @staticmethod
    def _compare_binary(i: int, event: dict[str, Any], frame: bytes) -> list[str]:
        if event["event_type_u32be"] != 3:
            return []
        size = int.from_bytes(frame[4:8], "big")
        node, text = frame[8 : 8 + size].decode(), frame[8 + size :].decode()
        if (node, text) != (event["node_id"], event["text"]):
            return [f"{i}: text frame {(node, text)!r}, expected {event['node_id'], event['text']}"]
        return []


class Socket:
    """One recorded WebSocket session: opened with the recorded URL, sends what the recorded
    client sent, and collects every frame until closed."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.name = name
        self.recorded = capture(name)
        self.frames: list[Frame] = []
        self._changed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._barrier: int | None = None

    async def open(self) -> None:
        """Connect, send what the recorded client sent, and wait for the server's greeting:
        the first `status` (the socket is registered from then on) and, if the client's first
        frame was `feature_flags`, the reply (negotiated before anything else happens)."""
        url = self.session.sim.url.replace("http", "ws", 1) + self.recorded["ws_url_path"]
        self._ws = await websockets.connect(url)
        self._reader = asyncio.create_task(self._read())
        sent = [e["json"] for e in self.recorded["events"] if e["kind"] == "client_sent_text"]
        for frame in sent:
            await self._ws.send(json.dumps(frame))
        await self.until(lambda frames: len(frames) >= 1, "first status")
        if sent and sent[0].get("type") == "feature_flags":
            await self.until(
                lambda frames: any(_frame_type(f) == "feature_flags" for f in frames),
                "feature_flags reply",
            )

    async def _read(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                self.frames.append(raw if isinstance(raw, bytes) else json.loads(raw))
                self._changed.set()

    async def until(self, done: Callable[[list[Frame]], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not done(self.frames):
            self._changed.clear()
            if loop.time() >= deadline:
                got = [_frame_type(f) for f in self.frames]
                raise AssertionError(f"{self.name}: no {what} within {WAIT}s; got {got}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), deadline - loop.time())

    async def until_done(self, post: str) -> None:
        """Until `executing` with `node: null` for the prompt that `post` submitted."""
        pid = self.session.prompt_id(post)
        await self.until(
            lambda frames: any(
                isinstance(f, dict)
                and f.get("type") == "executing"
                and f["data"].get("node") is None
                and f["data"].get("prompt_id") == pid
                for f in frames
            ),
            f"end of {pid}",
        )

    async def barrier(self) -> None:
        """Everything the server sent this socket before now arrives before the answer to a
        first `feature_flags` frame (a socket's frames are sent in order); that answer is not
        part of the recording and is dropped."""
        assert self._ws is not None and self._barrier is None
        mark = len(self.frames)
        await self._ws.send(json.dumps({"type": "feature_flags", "data": {}}))
        await self.until(
            lambda frames: any(_frame_type(f) == "feature_flags" for f in frames[mark:]),
            "barrier reply",
        )
        self._barrier = next(
            i for i, f in enumerate(self.frames) if i >= mark and _frame_type(f) == "feature_flags"
        )

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        if self._barrier is not None:
            self.frames = self.frames[: self._barrier] + self.frames[self._barrier + 1 :]


# -- the sessions -------------------------------------------------------------------------------


_IDLE = {"status": {"exec_info": {"queue_remaining": 0}}}


def _no_client_run_over(post: str, session: Session) -> Callable[[list[Frame]], bool]:
    """A prompt without client_id sends its socket only broadcasts: it is over at the first
    `status` with an empty queue after its own `progress_state` frames."""
    pid = session.prompt_id(post)

    def over(frames: list[Frame]) -> bool:
        started = False
        for f in frames:
            if not isinstance(f, dict):
                continue
            if f.get("type") == "progress_state" and f["data"].get("prompt_id") == pid:
                started = True
            elif started and f == {"type": "status", "data": _IDLE}:
                return True
        return False

    return over


async def session_a(s: Session) -> None:
    await s.replay_phase(Phase.FRESH)

    # Opening a socket waits for its greeting (see Socket.open).
    async with s.socket("ws_connect_without_client_id.json"):
        pass
    async with s.socket("ws_connect_with_feature_flags.json"):
        pass
    # Its late feature_flags frame must stay unanswered: the socket stays open (and is read)
    # while the uploads go through, then closes.
    async with s.socket("ws_feature_flags_not_first.json"):
        await s.replay_phase(Phase.UPLOADS)

    async with s.socket("ws_bystander_socket.json") as bystander:
        async with s.socket("ws_run_success.json") as sock:
            await s.replay_http("post_prompt_success.json")
            await sock.until_done("post_prompt_success.json")
        async with s.socket("ws_run_fully_cached.json") as sock:
            await s.replay_http("post_prompt_cached.json")
            await sock.until_done("post_prompt_cached.json")
        async with s.socket("ws_run_without_client_id.json") as sock:
            await s.replay_http("post_prompt_without_client_id.json")
            await sock.until(
                _no_client_run_over("post_prompt_without_client_id.json", s), "run end"
            )
        # The bystander connected before the others, so broadcasts reached it first.
        await bystander.barrier()

    async with s.socket("ws_run_loadimage.json") as sock:
        await s.replay_http("post_prompt_loadimage.json")
        await sock.until_done("post_prompt_loadimage.json")

    async with s.socket("ws_validation_errors.json") as sock:
        for name in (
            "post_prompt_error_bad_inputs.json",
            "post_prompt_error_type_mismatch.json",
            "post_prompt_error_link_to_missing_node.json",
            "post_prompt_error_unknown_class.json",
            "post_prompt_error_missing_class_type.json",
            "post_prompt_error_no_outputs.json",
            "post_prompt_error_no_prompt.json",
            "post_prompt_error_not_json.json",
            "post_prompt_error_loadimage_missing_file.json",
            "post_prompt_error_non_uuid_prompt_id.json",
            "post_prompt_partially_valid.json",
        ):
            await s.replay_http(name)
        await sock.until_done("post_prompt_partially_valid.json")

    async with s.socket("ws_run_execution_error.json") as sock:
        await s.replay_http("post_prompt_exec_failure_accepted.json")
        await sock.until_done("post_prompt_exec_failure_accepted.json")
    async with s.socket("ws_run_binary_frames_legacy.json") as sock:
        await s.replay_http("post_prompt_ws_images_legacy.json")
        await sock.until_done("post_prompt_ws_images_legacy.json")
    # SaveImageWebsocket never comes from the cache (its IS_CHANGED is the time); the
    # simulator's executor does not know that of the stand-in, so forget its last result.
    s.sim.sim.executor._cache.pop("2", None)
    async with s.socket("ws_run_binary_frames_metadata.json") as sock:
        await s.replay_http("post_prompt_ws_images_metadata.json")
        await sock.until_done("post_prompt_ws_images_metadata.json")

    await _busy_queue(s)
    await s.replay_phase(Phase.DONE)


async def _busy_queue(s: Session) -> None:
    """ws_queue_and_interrupt: slow_1 runs (held in its first node while four more prompts
    arrive, then in its second while the queue is looked at), is interrupted; `front` runs and
    is interrupted; the explicit 2.5 runs while the queue is cleared of slow_2."""
    async with s.socket("ws_queue_and_interrupt.json") as sock:
        held = s.gates.arm("1")
        await s.replay_http("post_prompt_slow_1.json")
        await held.reached()
        for name in (
            "post_prompt_slow_2.json",
            "post_prompt_slow_3.json",
            "post_prompt_front_true.json",
            "post_prompt_explicit_number_and_prompt_id.json",
        ):
            await s.replay_http(name)
        held, previous = s.gates.arm("2"), held
        previous.opened.set()
        await held.reached()
        for name in (
            "get_queue_busy.json",
            "get_prompt_busy.json",
            "get_api_jobs_busy.json",
            "get_api_jobs_item_pending.json",
            "get_api_jobs_item_running.json",
            "post_queue_delete.json",
            "get_queue_after_delete.json",
            "post_interrupt_targeted.json",
        ):
            await s.replay_http(name)
        held, previous = s.gates.arm("2"), held  # front, in its second node
        previous.opened.set()
        await held.reached()
        await s.replay_http("get_queue_second_running.json")
        await s.replay_http("post_interrupt_global_empty_body.json")
        held, previous = s.gates.arm("1"), held  # the explicit 2.5, in its first node
        previous.opened.set()
        await held.reached()
        await s.replay_http("post_queue_clear.json")
        await s.replay_http("post_interrupt_not_running.json")
        held.opened.set()
        await sock.until_done("post_prompt_explicit_number_and_prompt_id.json")


async def session_b(s: Session) -> None:
    # The bystander connects second: broadcasts reach it after the prompt's own socket.
    async with (
        s.socket("ws_run_progress_text_and_text_output.json") as sock,
        s.socket("ws_run_progress_text_bystander.json") as bystander,
    ):
        await s.replay_http("post_prompt_progress_text.json")
        await sock.until_done("post_prompt_progress_text.json")
        await bystander.barrier()
    await s.replay_http("get_history_item_text_output.json")


SESSIONS: dict[str, Callable[[Session], Awaitable[None]]] = {"A": session_a, "B": session_b}


def _example_png() -> bytes:
    return _png((8, 8), lambda x, y: (255, 255, 255, 255))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replayed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replay]:
    replay = Replay()
    for name, script in SESSIONS.items():
        base = tmp_path_factory.mktemp(f"session_{name}")
        (base / "input").mkdir()
        (base / "input" / "example.png").write_bytes(_example_png())
        async with (
            serve_simulator(base, SimulatorConfig(step_delay=0)) as sim,
            httpx.AsyncClient(base_url=sim.url, timeout=WAIT) as http,
        ):
            session = Session(name, sim, http, replay)
            try:
                await script(session)
            except Exception:
                replay.failures[name] = traceback.format_exc()
            finally:
                session.gates.release_all()
    yield replay


# -- the tests ----------------------------------------------------------------------------------


def _all_captures() -> Iterator[str]:
    for path in sorted(CAPTURES.glob("*.json")):
        if path.name != "_index.json":
            yield path.name


def test_every_capture_is_replayed_or_a_known_mismatch() -> None:
    recorded = set(capture("_index.json")["files"]) - {"_index.json"}
    both = set(CONTRACT) & set(KNOWN_MISMATCHES)
    assert not both, f"in both tables: {sorted(both)}"
    unlisted = recorded - set(CONTRACT) - set(KNOWN_MISMATCHES)
    assert not unlisted, f"captures in neither CONTRACT nor KNOWN_MISMATCHES: {sorted(unlisted)}"
    stale = (set(CONTRACT) | set(KNOWN_MISMATCHES)) - recorded
    assert not stale, f"listed but not captured: {sorted(stale)}"
    assert all(reason.strip() for reason in KNOWN_MISMATCHES.values())


def test_the_test_data_holds_every_replayed_capture_and_nothing_unread() -> None:
    """tests/data keeps what the tests read (see its README): every CONTRACT capture and the
    known mismatches session A still replays, each of them a file of the recording."""
    files = set(_all_captures())
    assert set(KNOWN_MISMATCHES) >= STILL_REPLAYED
    assert files == set(CONTRACT) | STILL_REPLAYED, "tests/data and the tables disagree"
    assert files <= set(capture("_index.json")["files"]), "captures/_index.json and the folder"


def test_the_session_replays_every_contract_capture_once(replayed: Replay) -> None:
    assert not replayed.failures, "\n".join(replayed.failures.values())
    assert set(replayed.seen) == set(CONTRACT)


@pytest.mark.parametrize("name", list(CONTRACT))
def test_capture_replays_like_comfyui(replayed: Replay, name: str) -> None:
    seen = replayed.seen.get(name)
    if seen is None:
        failures = "\n".join(replayed.failures.values())
        pytest.fail(f"{name} was not replayed ({CONTRACT[name].phase.value})\n{failures}")
    assert not seen.problems, f"{name} ({CONTRACT[name].phase.value}):\n" + "\n".join(seen.problems)


# -- behaviour PROTOCOL.md documents from ComfyUI's source (no capture shows it) -----------------

_SMALL_RUN = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "again"}},
}


async def test_a_client_reconnecting_mid_run_is_told_the_running_node(tmp_path: Path) -> None:
    """A reconnecting client whose prompt runs gets `executing` with the current node, never
    `node: null` (which would tell it the prompt is over)."""
    async with (
        serve_simulator(tmp_path / "sim", SimulatorConfig(step_delay=0)) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=WAIT) as http,
    ):
        gates = Gates()
        sim.sim.executor.nodes = {k: gates.wrap(v) for k, v in NODES.items()}
        held = gates.arm("2")
        try:
            r = await http.post("/prompt", json={"prompt": _SMALL_RUN, "client_id": "again"})
            assert r.status_code == 200
            await held.reached()
            async with websockets.connect(f"{sim.ws_url}?clientId=again") as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                second = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        finally:
            gates.release_all()
    assert first["data"]["sid"] == "again"
    assert second == {"type": "executing", "data": {"node": "2"}}


async def test_a_first_frame_that_is_not_json_leaves_feature_flags_to_the_next(
    tmp_path: Path,
) -> None:
    async with (
        serve_simulator(tmp_path / "sim", SimulatorConfig(step_delay=0)) as sim,
        websockets.connect(sim.ws_url) as ws,
    ):
        await asyncio.wait_for(ws.recv(), WAIT)
        await ws.send("not json")
        await ws.send(json.dumps({"type": "feature_flags", "data": {}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert reply["type"] == "feature_flags"
    assert reply["data"] == capture("get_features.json")["response"]["body"]["json"]


def test_preview_frames_follow_each_sockets_negotiation(replayed: Replay) -> None:
    """What the SaveImageWebsocket captures (KNOWN_MISMATCHES) still show through the stand-in:
    a socket that did not negotiate gets type-1 preview frames, one that sent
    `supports_preview_metadata` first gets type 4 with the recorded metadata keys."""
    for name, kind in (
        ("ws_run_binary_frames_legacy.json", 1),
        ("ws_run_binary_frames_metadata.json", 4),
    ):
        recorded = [e for e in capture(name)["events"] if e["kind"] == "binary"]
        frames = [f for f in replayed.frames.get(name, []) if isinstance(f, bytes)]
        assert [int.from_bytes(f[:4], "big") for f in frames] == [kind] * len(recorded), name
        for frame, event in zip(frames, recorded, strict=True):
            if kind == 4:
                size = int.from_bytes(frame[4:8], "big")
                meta = json.loads(frame[8 : 8 + size])
                assert meta.keys() == event["metadata_json"].keys()
                assert meta["node_id"] == event["metadata_json"]["node_id"]
