"""Nodes that write image files and report them as UI output: SaveImage, PreviewImage,
SaveAnimatedWEBP and SaveAnimatedPNG.

File names come from the executor's `ctx.next_filename` (ComfyUI's `<prefix>_00001_.png`
counter), asked once per file right before that file is written, so the counter advances.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from worker.simulator.nodes import padding
from worker.simulator.runtime import Images, NodeContext, NodeResult, OutputFile

DEFAULT_PREFIX = "ComfyUI"
_SAVE_COMPRESS_LEVEL = 4
_PREVIEW_COMPRESS_LEVEL = 1  # previews are throwaway: favour speed, as ComfyUI does
_WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}
# EXIF tags ComfyUI uses for workflow metadata in WEBP: Model for the prompt, then Make and
# downwards for each extra_pnginfo entry.
_EXIF_PROMPT_TAG = 0x0110
_EXIF_FIRST_EXTRA_TAG = 0x010F

PromptInfo = dict[str, Any] | None


async def save_image(
    ctx: NodeContext,
    *,
    images: Images,
    filename_prefix: str = DEFAULT_PREFIX,
    prompt: PromptInfo = None,
    extra_pnginfo: PromptInfo = None,
) -> NodeResult:
    info = _png_text(prompt, extra_pnginfo)
    files = await _save_pngs(
        ctx, images, ctx.output_dir, filename_prefix, "output", _SAVE_COMPRESS_LEVEL, info
    )
    return NodeResult(ui={"images": [file.as_dict() for file in files]})


async def preview_image(
    ctx: NodeContext,
    *,
    images: Images,
    prompt: PromptInfo = None,
    extra_pnginfo: PromptInfo = None,
) -> NodeResult:
    prefix = f"{DEFAULT_PREFIX}_temp_{preview_letters(ctx.node_id)}"
    info = _png_text(prompt, extra_pnginfo)
    files = await _save_pngs(
        ctx, images, ctx.temp_dir, prefix, "temp", _PREVIEW_COMPRESS_LEVEL, info
    )
    return NodeResult(ui={"images": [file.as_dict() for file in files]})


def preview_letters(node_id: str) -> str:
    """The five letters in a PreviewImage file name. ComfyUI draws them at random once per
    node instance; deriving them from the node id keeps them stable across runs the same way."""
    digest = hashlib.sha256(node_id.encode()).digest()
    return "".join(string.ascii_lowercase[byte % 26] for byte in digest[:5])


async def _save_pngs(
    ctx: NodeContext,
    images: Images,
    folder: Path,
    prefix: str,
    kind: str,
    compress_level: int,
    info: PngInfo | None,
) -> list[OutputFile]:
    files = []
    for batch_number, image in enumerate(images):
        batch_prefix = prefix.replace("%batch_num%", str(batch_number))
        subfolder, filename = ctx.next_filename(folder, batch_prefix, "png")
        path = _prepare(folder, subfolder, filename)
        await asyncio.to_thread(
            image.save, path, format="PNG", pnginfo=info, compress_level=compress_level
        )
        files.append(OutputFile(filename, subfolder, kind))
    return files


def _prepare(folder: Path, subfolder: str, filename: str) -> Path:
    directory = folder / subfolder
    directory.mkdir(parents=True, exist_ok=True)
    return directory / filename


def _png_text(prompt: PromptInfo, extra_pnginfo: PromptInfo) -> PngInfo | None:
    if prompt is None and extra_pnginfo is None:
        return None
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


async def save_animated_webp(
    ctx: NodeContext,
    *,
    images: Images,
    filename_prefix: str = DEFAULT_PREFIX,
    fps: float = 6.0,
    lossless: bool = True,
    quality: int = 80,
    method: str = "default",
    prompt: PromptInfo = None,
    extra_pnginfo: PromptInfo = None,
) -> NodeResult:
    def encode() -> bytes:
        return _animation_bytes(
            images,
            "WEBP",
            fps,
            exif=_webp_exif(images[0], prompt, extra_pnginfo),
            lossless=lossless,
            quality=quality,
            method=_WEBP_METHODS[method],
        )

    file = await _save_animation(ctx, filename_prefix, "webp", encode, padding.write_webp)
    # A single frame is a still picture, and ComfyUI reports it as not animated.
    return NodeResult(ui={"images": [file.as_dict()], "animated": [len(images) != 1]})


async def save_animated_png(
    ctx: NodeContext,
    *,
    images: Images,
    filename_prefix: str = DEFAULT_PREFIX,
    fps: float = 6.0,
    compress_level: int = 4,
    prompt: PromptInfo = None,
    extra_pnginfo: PromptInfo = None,
) -> NodeResult:
    def encode() -> bytes:
        return _animation_bytes(
            images,
            "PNG",
            fps,
            compress_level=compress_level,
            pnginfo=_apng_info(prompt, extra_pnginfo),
        )

    file = await _save_animation(ctx, filename_prefix, "png", encode, padding.write_png)
    return NodeResult(ui={"images": [file.as_dict()], "animated": [True]})


def _animation_bytes(images: Images, fmt: str, fps: float, **options: Any) -> bytes:
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format=fmt,
        save_all=True,
        append_images=images[1:],
        duration=_frame_duration_ms(fps),
        **options,
    )
    return buffer.getvalue()


async def _save_animation(
    ctx: NodeContext,
    prefix: str,
    extension: str,
    encode: Callable[[], bytes],
    write: Callable[[Path, bytes, int], None],
) -> OutputFile:
    """Encode in memory (frames are small), then write the file grown to
    `config.large_output_bytes` when that is set, so tests can exercise huge outputs."""
    encoded = await asyncio.to_thread(encode)
    subfolder, filename = ctx.next_filename(ctx.output_dir, prefix, extension)
    path = _prepare(ctx.output_dir, subfolder, filename)
    await asyncio.to_thread(write, path, encoded, ctx.config.large_output_bytes)
    return OutputFile(filename, subfolder, "output")


def _frame_duration_ms(fps: float) -> int:
    return int(1000.0 / fps)


def _webp_exif(first: Image.Image, prompt: PromptInfo, extra_pnginfo: PromptInfo) -> Image.Exif:
    exif = first.getexif()
    if prompt is not None:
        exif[_EXIF_PROMPT_TAG] = f"prompt:{json.dumps(prompt)}"
    for offset, (key, value) in enumerate((extra_pnginfo or {}).items()):
        exif[_EXIF_FIRST_EXTRA_TAG - offset] = f"{key}:{json.dumps(value)}"
    return exif


def _apng_info(prompt: PromptInfo, extra_pnginfo: PromptInfo) -> PngInfo | None:
    if prompt is None and extra_pnginfo is None:
        return None
    # ComfyUI stores workflow metadata of animated PNGs in "comf" chunks after the image data.
    info = PngInfo()
    entries = ([("prompt", prompt)] if prompt is not None else []) + list(
        (extra_pnginfo or {}).items()
    )
    for key, value in entries:
        payload = key.encode("latin-1") + b"\0" + json.dumps(value).encode("latin-1")
        info.add(b"comf", payload, after_idat=True)
    return info
