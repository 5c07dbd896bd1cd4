"""What the page asks about "its server": node catalogue, features, system stats, extensions,
models, templates. The answers describe the room (the workers' ComfyUI), never a worker's
paths or logs, and list only the participant's own files.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from frontend import extension_entries
from queue_manager import __version__
from queue_manager.comfy.object_info import for_user
from queue_manager.storage.listing import input_images

from ..deps import Files, Service
from .access import Owner

router = APIRouter()
internal = APIRouter()

# The model folders ComfyUI 0.25 knows; the page uses the names, never the paths.
MODEL_FOLDERS = (
    "checkpoints",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "upscale_models",
    "controlnet",
)
# object_info inputs that list the files of a model folder.
_FOLDER_INPUTS = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "vae": ("VAELoader", "vae_name"),
    "text_encoders": ("CLIPLoader", "clip_name"),
    "diffusion_models": ("UNETLoader", "unet_name"),
    "upscale_models": ("UpscaleModelLoader", "model_name"),
    "controlnet": ("ControlNetLoader", "control_net_name"),
}


def frontend_version() -> str:
    try:
        return metadata.version("comfyui-frontend-package")
    except metadata.PackageNotFoundError:
        return "unknown"


def features(max_upload: int) -> dict[str, Any]:
    return {
        "supports_preview_metadata": True,
        "max_upload_size": max_upload,
        "extension": {"manager": {"supports_v4": False}},
        "node_replacements": True,
        "assets": False,
    }


@router.get("/object_info")
async def object_info(account: Owner, service: Service, files: Files) -> Response:
    view = await service.node_catalog()
    images = await input_images(files, account.name)
    info = for_user(view.object_info, view.uploads, {"image_upload": images})
    return Response(json.dumps(info, separators=(",", ":")), media_type="application/json")


@router.get("/object_info/{node_class}")
async def object_info_node(
    node_class: str, account: Owner, service: Service, files: Files
) -> dict[str, Any]:
    view = await service.node_catalog()
    if node_class not in view.object_info:
        return {}
    uploads = [u for u in view.uploads if u[0] == node_class]
    images = await input_images(files, account.name) if uploads else []
    info = for_user({node_class: view.object_info[node_class]}, uploads, {"image_upload": images})
    return {node_class: info[node_class]}


@router.get("/features")
async def get_features(account: Owner, service: Service) -> dict[str, Any]:
    return features(service.settings.max_upload_bytes)


@router.get("/system_stats")
async def system_stats(account: Owner, service: Service) -> dict[str, Any]:
    """The room as one ComfyUI: our versions, and the workers' GPUs as its devices."""
    devices: list[Any] = []
    comfy_version = None
    for worker in await service.gpu_workers():
        reported = worker.info.get("devices")
        if isinstance(reported, list):
            devices.extend(
                {**d, "name": f"{worker.id}: {d.get('name', '')}"}
                for d in reported
                if isinstance(d, dict)
            )
        comfy_version = comfy_version or worker.info.get("comfyui_version")
    fe = frontend_version()
    return {
        "system": {
            "os": sys.platform,
            "ram_total": 0,
            "ram_free": 0,
            "comfyui_version": comfy_version or f"comfy-workshop {__version__}",
            "required_frontend_version": fe,
            "installed_templates_version": "",
            "required_templates_version": "",
            "python_version": platform.python_version(),
            "pytorch_version": "",
            "embedded_python": False,
            "argv": [],
        },
        "devices": devices,
    }


@router.get("/extensions")
async def extensions(account: Owner) -> list[str]:
    return extension_entries()


@router.get("/embeddings")
async def embeddings(account: Owner) -> list[str]:
    return []


@router.get("/i18n")
async def i18n(account: Owner) -> dict[str, Any]:
    return {}


@router.get("/workflow_templates")
async def workflow_templates(account: Owner) -> dict[str, Any]:
    return {}


@router.get("/global_subgraphs")
async def global_subgraphs(account: Owner) -> dict[str, Any]:
    return {}


@router.get("/global_subgraphs/{subgraph_id}")
async def global_subgraph(subgraph_id: str, account: Owner) -> Response:
    return Response(status_code=404)


@router.get("/node_replacements")
async def node_replacements(account: Owner) -> dict[str, Any]:
    return {}


@router.get("/models")
async def models(account: Owner) -> list[str]:
    return list(MODEL_FOLDERS)


@router.get("/models/{folder}")
async def model_files(folder: str, account: Owner, service: Service) -> Response:
    """The files the workers have in that folder (from their catalogue); 404 if unknown."""
    if folder not in MODEL_FOLDERS:
        return Response(status_code=404)
    found: list[Any] = []
    if folder in _FOLDER_INPUTS:
        node, name = _FOLDER_INPUTS[folder]
        spec = (await service.node_catalog()).object_info.get(node, {}).get("input", {})
        combo = spec.get("required", {}).get(name)
        if isinstance(combo, list) and combo and isinstance(combo[0], list):
            found = combo[0]
    return JSONResponse(found)


@router.get("/experiment/models")
async def experiment_models(account: Owner) -> list[dict[str, Any]]:
    """Folder names only: ComfyUI lists server paths here, which are nobody's business."""
    return [{"name": name, "folders": []} for name in MODEL_FOLDERS]


@router.get("/experiment/models/{folder}")
async def experiment_model_files(folder: str, account: Owner, service: Service) -> Response:
    listing = await model_files(folder, account, service)
    if listing.status_code != 200:
        return listing
    names = json.loads(bytes(listing.body))
    return JSONResponse([{"name": n, "pathIndex": 0} for n in names])


@router.get("/view_metadata/{folder}")
async def view_metadata(folder: str, account: Owner) -> Response:
    return Response(status_code=404)


@internal.get("/folder_paths")
async def folder_paths(account: Owner) -> dict[str, list[str]]:
    return {name: [] for name in MODEL_FOLDERS}


@internal.get("/logs")
async def logs(account: Owner) -> str:
    return ""


@internal.get("/logs/raw")
async def logs_raw(account: Owner) -> dict[str, Any]:
    return {"entries": [], "size": {"cols": 80, "rows": 24}}
