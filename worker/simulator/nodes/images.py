"""Image sources and transforms: EmptyImage, LoadImage, ImageBlur, ImageInvert, ImageScale.

An IMAGE is a batch (list) of same-sized PIL images; a MASK is a list of "L" images where
255 marks what ComfyUI masks (the transparent parts of a loaded image).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageSequence

from worker.simulator.runtime import Images, NodeContext, NodeResult

Masks = list[Image.Image]

# ComfyUI's upscale method names and the Pillow filters that come closest.
_RESAMPLING = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# What ComfyUI returns as the mask of an image without transparency.
_NO_MASK_SIZE = (64, 64)
# Multi-frame formats whose extra frames are not animation frames (ComfyUI keeps only the first).
_SINGLE_FRAME_FORMATS = frozenset({"MPO"})


async def empty_image(
    ctx: NodeContext, *, width: int, height: int, batch_size: int, color: int
) -> NodeResult:
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)

    def make() -> Images:
        return [Image.new("RGB", (width, height), rgb) for _ in range(batch_size)]

    return NodeResult((await asyncio.to_thread(make),))


async def load_image(ctx: NodeContext, *, image: str) -> NodeResult:
    path = _annotated_path(ctx, image)
    images, masks = await asyncio.to_thread(_read_frames, path)
    return NodeResult((images, masks))


def _annotated_path(ctx: NodeContext, name: str) -> Path:
    """The file a LoadImage name refers to: "sub/x.png" in the input folder, or with a
    " [input]" / " [output]" / " [temp]" suffix naming the folder."""
    folders = {"input": ctx.input_dir, "output": ctx.output_dir, "temp": ctx.temp_dir}
    folder = ctx.input_dir
    for kind, directory in folders.items():
        suffix = f" [{kind}]"
        if name.endswith(suffix):
            name, folder = name.removesuffix(suffix), directory
            break
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ValueError(f"Invalid image file: {name}")
    return path


def _read_frames(path: Path) -> tuple[Images, Masks]:
    images: Images = []
    masks: Masks = []
    with Image.open(path) as source:
        for frame in ImageSequence.Iterator(source):
            upright = ImageOps.exif_transpose(frame)
            if upright.mode == "I":
                # 16/32-bit greyscale: bring it into 0..255 the way ComfyUI does.
                upright = upright.point(lambda value: value * (1 / 255))
            rgb = upright.convert("RGB")
            if images and rgb.size != images[0].size:
                continue  # a batch has one size; ComfyUI drops frames that differ
            images.append(rgb)
            masks.append(_mask(upright))
            if source.format in _SINGLE_FRAME_FORMATS:
                break
    return images, masks


def _mask(frame: Image.Image) -> Image.Image:
    if "A" in frame.getbands():
        return ImageChops.invert(frame.getchannel("A"))
    if frame.mode == "P" and "transparency" in frame.info:
        return ImageChops.invert(frame.convert("RGBA").getchannel("A"))
    return Image.new("L", _NO_MASK_SIZE, 0)


async def image_blur(
    ctx: NodeContext, *, image: Images, blur_radius: int, sigma: float
) -> NodeResult:
    # ComfyUI convolves with a (2r+1)-wide Gaussian of `sigma`, so the kernel's reach caps
    # the blur; Pillow's radius is the standard deviation.
    blur = ImageFilter.GaussianBlur(radius=min(sigma, blur_radius))

    def apply() -> Images:
        return [picture.filter(blur) for picture in image]

    return NodeResult((await asyncio.to_thread(apply),))


async def image_invert(ctx: NodeContext, *, image: Images) -> NodeResult:
    return NodeResult((await asyncio.to_thread(lambda: [_invert(p) for p in image]),))


def _invert(picture: Image.Image) -> Image.Image:
    if picture.mode != "RGBA":
        return ImageOps.invert(picture.convert("RGB"))
    # Keep transparency: inverting alpha would hide the picture rather than invert it.
    *colour, alpha = picture.split()
    inverted = ImageOps.invert(Image.merge("RGB", colour))
    inverted.putalpha(alpha)
    return inverted


async def image_scale(
    ctx: NodeContext,
    *,
    image: Images,
    upscale_method: str,
    width: int,
    height: int,
    crop: str,
) -> NodeResult:
    if (width == 0 and height == 0) or not image:
        return NodeResult((image,))
    source_width, source_height = image[0].size
    # A zero side follows the other one, keeping the aspect ratio (as ComfyUI does).
    if width == 0:
        width = max(1, round(source_width * height / source_height))
    elif height == 0:
        height = max(1, round(source_height * width / source_width))
    method = _RESAMPLING[upscale_method]
    size = (width, height)

    def scale(picture: Image.Image) -> Image.Image:
        if crop == "center":
            return ImageOps.fit(picture, size, method)
        return picture.resize(size, method)

    return NodeResult((await asyncio.to_thread(lambda: [scale(p) for p in image]),))


async def mask_to_image(ctx: NodeContext, *, mask: Masks) -> NodeResult:
    """A mask shown as a grey picture (white where the mask is set), as ComfyUI's MaskToImage."""
    return NodeResult(outputs=([m.convert("RGB") for m in mask],))
