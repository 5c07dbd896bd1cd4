"""The simulator's node implementations, run directly against a fake NodeContext."""

from __future__ import annotations

import inspect
import io
import json
import re
import tracemalloc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, UnidentifiedImageError

from tests.support.paths import SIMULATOR_OBJECT_INFO
from worker.simulator.nodes import NODES, SimulatedFailure
from worker.simulator.runtime import (
    Conditioning,
    Interrupted,
    Latent,
    ModelRef,
    NodeResult,
    SimulatorConfig,
)

OBJECT_INFO: dict[str, Any] = json.loads(SIMULATOR_OBJECT_INFO.read_text())
MB = 1_000_000


@dataclass
class FakeContext:
    """A NodeContext that records what a node reports and names files like ComfyUI."""

    output_dir: Path
    temp_dir: Path
    input_dir: Path
    config: SimulatorConfig = field(default_factory=SimulatorConfig)
    prompt_id: str = "prompt-1"
    node_id: str = "1"
    class_type: str = ""
    interrupt_after_step: int | None = None
    steps: list[tuple[int, int]] = field(default_factory=list)
    previews: list[Image.Image] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    async def progress(self, value: int, maximum: int) -> None:
        self.steps.append((value, maximum))

    async def preview(self, image: Image.Image) -> None:
        self.previews.append(image)

    async def text(self, text: str) -> None:
        self.texts.append(text)

    def check_interrupted(self) -> None:
        if self.interrupt_after_step is not None and len(self.steps) >= self.interrupt_after_step:
            raise Interrupted

    def next_filename(self, folder: Path, prefix: str, extension: str) -> tuple[str, str]:
        subfolder, _, stem = prefix.rpartition("/")
        target = folder / subfolder
        target.mkdir(parents=True, exist_ok=True)
        pattern = re.compile(rf"^{re.escape(stem)}_(\d+)_")
        counters = [int(m.group(1)) for p in target.iterdir() if (m := pattern.match(p.name))]
        return subfolder, f"{stem}_{max(counters, default=0) + 1:05d}_.{extension}"


@pytest.fixture
def ctx(tmp_path: Path) -> FakeContext:
    folders = {name: tmp_path / name for name in ("output", "temp", "input")}
    for folder in folders.values():
        folder.mkdir()
    return FakeContext(folders["output"], folders["temp"], folders["input"])


async def run(ctx: FakeContext, class_type: str, **inputs: Any) -> NodeResult:
    ctx.class_type = class_type
    result = await NODES[class_type](ctx, **inputs)
    assert len(result.outputs) == len(OBJECT_INFO[class_type]["output"])
    return result


def solid(width: int, height: int, colour: tuple[int, ...], count: int = 1) -> list[Image.Image]:
    mode = "RGBA" if len(colour) == 4 else "RGB"
    return [Image.new(mode, (width, height), colour) for _ in range(count)]


def output_bytes(ctx: FakeContext, ui: dict[str, list[Any]]) -> bytes:
    file = ui["images"][0]
    folder = ctx.output_dir if file["type"] == "output" else ctx.temp_dir
    path: Path = folder / file["subfolder"] / file["filename"]
    return path.read_bytes()


# -- the registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("class_type", sorted(NODES))
def test_each_node_takes_the_inputs_comfyui_declares(class_type: str) -> None:
    declared = OBJECT_INFO[class_type]["input"]
    required = set(declared.get("required", {}))
    optional = set(declared.get("optional", {}))
    hidden = set(declared.get("hidden", {}))
    parameters = dict(list(inspect.signature(NODES[class_type]).parameters.items())[1:])

    assert required | optional <= set(parameters) <= required | optional | hidden
    for name in optional | (hidden & set(parameters)):
        assert parameters[name].default is not inspect.Parameter.empty


async def test_inputs_a_node_does_not_declare_are_ignored(ctx: FakeContext) -> None:
    result = await run(ctx, "ImageInvert", image=solid(2, 2, (0, 0, 0)), unknown="x")

    assert result.outputs[0][0].getpixel((0, 0)) == (255, 255, 255)


async def test_a_node_type_configured_to_fail_raises_before_doing_anything(
    ctx: FakeContext,
) -> None:
    ctx.config = SimulatorConfig(fail_class_types=frozenset({"SaveImage"}))

    with pytest.raises(RuntimeError, match=r"SaveImage.*fail_class_types") as raised:
        await run(ctx, "SaveImage", images=solid(4, 4, (1, 2, 3)))

    assert isinstance(raised.value, SimulatedFailure)
    assert list(ctx.output_dir.iterdir()) == []


async def test_node_types_not_configured_to_fail_still_run(ctx: FakeContext) -> None:
    ctx.config = SimulatorConfig(fail_class_types=frozenset({"SaveImage"}))

    result = await run(ctx, "EmptyImage", width=2, height=2, batch_size=1, color=0)

    assert len(result.outputs[0]) == 1


# -- image sources and transforms ---------------------------------------------------------------


async def test_empty_image_fills_a_batch_with_the_colour(ctx: FakeContext) -> None:
    result = await run(ctx, "EmptyImage", width=40, height=24, batch_size=3, color=0x102030)

    (images,) = result.outputs
    assert len(images) == 3
    assert all(image.size == (40, 24) and image.mode == "RGB" for image in images)
    assert images[2].getpixel((39, 23)) == (0x10, 0x20, 0x30)


async def test_load_image_gives_rgb_images_and_a_mask_of_the_transparent_parts(
    ctx: FakeContext,
) -> None:
    picture = Image.new("RGBA", (8, 6), (10, 20, 30, 255))
    picture.putpixel((0, 0), (10, 20, 30, 0))
    (ctx.input_dir / "sub").mkdir()
    picture.save(ctx.input_dir / "sub" / "x.png")

    result = await run(ctx, "LoadImage", image="sub/x.png")

    (image,), (mask,) = result.outputs
    assert (image.mode, image.size) == ("RGB", (8, 6))
    assert image.getpixel((1, 1)) == (10, 20, 30)
    assert (mask.mode, mask.size) == ("L", (8, 6))
    assert (mask.getpixel((0, 0)), mask.getpixel((1, 1))) == (255, 0)


async def test_load_image_of_an_opaque_image_gives_comfyuis_empty_mask(ctx: FakeContext) -> None:
    Image.new("RGB", (8, 6), (1, 2, 3)).save(ctx.input_dir / "opaque.jpg")

    result = await run(ctx, "LoadImage", image="opaque.jpg")

    (mask,) = result.outputs[1]
    assert mask.size == (64, 64)
    assert mask.getextrema() == (0, 0)


async def test_load_image_reads_each_frame_of_an_animation(ctx: FakeContext) -> None:
    frames = solid(5, 5, (255, 0, 0)) + solid(5, 5, (0, 0, 255))
    frames[0].save(ctx.input_dir / "anim.png", save_all=True, append_images=frames[1:])

    result = await run(ctx, "LoadImage", image="anim.png")

    assert [image.getpixel((0, 0)) for image in result.outputs[0]] == [(255, 0, 0), (0, 0, 255)]


@pytest.mark.parametrize(
    ("annotation", "folder"), [("input", "input_dir"), ("output", "output_dir")]
)
async def test_load_image_follows_a_folder_annotation(
    ctx: FakeContext, annotation: str, folder: str
) -> None:
    Image.new("RGB", (3, 3), (9, 9, 9)).save(getattr(ctx, folder) / "a.png")

    result = await run(ctx, "LoadImage", image=f"a.png [{annotation}]")

    assert result.outputs[0][0].getpixel((0, 0)) == (9, 9, 9)


async def test_load_image_of_a_file_that_is_not_an_image_fails_like_comfyui(
    ctx: FakeContext,
) -> None:
    (ctx.input_dir / "broken.png").write_text("not an image")

    with pytest.raises(UnidentifiedImageError, match=r"cannot identify image file .*broken\.png"):
        await run(ctx, "LoadImage", image="broken.png")


async def test_load_image_refuses_a_name_outside_its_folder(ctx: FakeContext) -> None:
    Image.new("RGB", (3, 3)).save(ctx.output_dir / "secret.png")

    with pytest.raises(ValueError, match="Invalid image file"):
        await run(ctx, "LoadImage", image="../output/secret.png")


async def test_image_invert_inverts_colours_and_keeps_transparency(ctx: FakeContext) -> None:
    images = solid(2, 2, (10, 20, 30)) + solid(2, 2, (10, 20, 30, 128))

    result = await run(ctx, "ImageInvert", image=images)

    rgb, rgba = result.outputs[0]
    assert rgb.getpixel((0, 0)) == (245, 235, 225)
    assert rgba.getpixel((0, 0)) == (245, 235, 225, 128)


async def test_image_blur_softens_an_edge_and_keeps_the_size(ctx: FakeContext) -> None:
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    image.paste((255, 255, 255), (10, 0, 20, 10))

    result = await run(ctx, "ImageBlur", image=[image], blur_radius=3, sigma=2.0)

    (blurred,) = result.outputs[0]
    assert blurred.size == (20, 10)
    assert 0 < blurred.getpixel((9, 5))[0] < 255


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(20, 30, (20, 30)), (0, 12, (20, 12)), (10, 0, (10, 6)), (0, 0, (40, 24))],
)
async def test_image_scale_resizes_and_a_zero_side_keeps_the_aspect_ratio(
    ctx: FakeContext, width: int, height: int, expected: tuple[int, int]
) -> None:
    result = await run(
        ctx,
        "ImageScale",
        image=solid(40, 24, (1, 2, 3), count=2),
        upscale_method="bilinear",
        width=width,
        height=height,
        crop="disabled",
    )

    assert [image.size for image in result.outputs[0]] == [expected, expected]


async def test_image_scale_with_center_crop_cuts_the_sides_off(ctx: FakeContext) -> None:
    image = Image.new("RGB", (30, 10), (255, 0, 0))
    image.paste((0, 255, 0), (10, 0, 20, 10))

    result = await run(
        ctx,
        "ImageScale",
        image=[image],
        upscale_method="nearest-exact",
        width=10,
        height=10,
        crop="center",
    )

    (scaled,) = result.outputs[0]
    assert scaled.size == (10, 10)
    assert scaled.getcolors() == [(100, (0, 255, 0))]


# -- inspection ---------------------------------------------------------------------------------


async def test_get_image_size_returns_the_size_and_shows_it_on_the_node(ctx: FakeContext) -> None:
    result = await run(ctx, "GetImageSize", image=solid(40, 24, (0, 0, 0), count=3))

    assert result.outputs == (40, 24, 3)
    assert ctx.texts == ["width: 40, height: 24\n batch size: 3"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (40, "40"),
        ("hello", "hello"),
        (True, "True"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        (Latent(64, 32, 1, "f"), '{"width": 64, "height": 32, "batch": 1, "fingerprint": "f"}'),
    ],
)
async def test_preview_any_shows_the_value_as_text(ctx: FakeContext, value: Any, text: str) -> None:
    result = await run(ctx, "PreviewAny", source=value)

    assert result.ui == {"text": [text]}
    assert result.outputs == (text,)


# -- saving -------------------------------------------------------------------------------------


async def test_save_image_writes_numbered_pngs_and_reports_them(ctx: FakeContext) -> None:
    result = await run(ctx, "SaveImage", images=solid(8, 8, (1, 2, 3), count=2))

    assert result.outputs == ()
    assert result.ui == {
        "images": [
            {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"},
            {"filename": "ComfyUI_00002_.png", "subfolder": "", "type": "output"},
        ]
    }
    with Image.open(ctx.output_dir / "ComfyUI_00002_.png") as saved:
        assert (saved.format, saved.size) == ("PNG", (8, 8))


async def test_save_image_continues_the_counter_after_existing_files(ctx: FakeContext) -> None:
    (ctx.output_dir / "ComfyUI_00007_.png").write_bytes(b"")
    (ctx.output_dir / "Other_00042_.png").write_bytes(b"")

    result = await run(ctx, "SaveImage", images=solid(4, 4, (0, 0, 0)))

    assert result.ui is not None
    assert result.ui["images"][0]["filename"] == "ComfyUI_00008_.png"


async def test_save_image_puts_a_prefix_with_a_folder_into_a_subfolder(ctx: FakeContext) -> None:
    result = await run(
        ctx, "SaveImage", images=solid(4, 4, (0, 0, 0)), filename_prefix="capture/ref"
    )

    assert result.ui == {
        "images": [{"filename": "ref_00001_.png", "subfolder": "capture", "type": "output"}]
    }
    assert (ctx.output_dir / "capture" / "ref_00001_.png").is_file()


async def test_save_image_embeds_the_prompt_when_given(ctx: FakeContext) -> None:
    result = await run(
        ctx,
        "SaveImage",
        images=solid(4, 4, (0, 0, 0)),
        prompt={"1": {"class_type": "X"}},
        extra_pnginfo={"workflow": {"nodes": []}},
    )

    assert result.ui is not None
    with Image.open(io.BytesIO(output_bytes(ctx, result.ui))) as saved:
        assert json.loads(saved.info["prompt"]) == {"1": {"class_type": "X"}}
        assert json.loads(saved.info["workflow"]) == {"nodes": []}


async def test_preview_image_writes_temp_files_named_per_node(ctx: FakeContext) -> None:
    first = await run(ctx, "PreviewImage", images=solid(4, 4, (0, 0, 0)))
    again = await run(ctx, "PreviewImage", images=solid(4, 4, (0, 0, 0)))
    ctx.node_id = "2"
    other_node = await run(ctx, "PreviewImage", images=solid(4, 4, (0, 0, 0)))

    names = [r.ui["images"][0]["filename"] for r in (first, again, other_node) if r.ui]
    assert all(re.fullmatch(r"ComfyUI_temp_[a-z]{5}_0000[12]_\.png", name) for name in names)
    assert names[1] == names[0].replace("_00001_", "_00002_")
    assert names[2][:18] != names[0][:18]
    assert first.ui == {"images": [{"filename": names[0], "subfolder": "", "type": "temp"}]}
    assert (ctx.temp_dir / names[0]).is_file()


@pytest.mark.parametrize(
    ("class_type", "format_"), [("SaveAnimatedWEBP", "WEBP"), ("SaveAnimatedPNG", "PNG")]
)
async def test_animated_saves_write_one_file_with_every_frame(
    ctx: FakeContext, class_type: str, format_: str
) -> None:
    frames = solid(6, 4, (255, 0, 0)) + solid(6, 4, (0, 255, 0)) + solid(6, 4, (0, 0, 255))

    result = await run(ctx, class_type, images=frames, filename_prefix="anim/clip", fps=8.0)

    extension = format_.lower()
    assert result.ui == {
        "images": [{"filename": f"clip_00001_.{extension}", "subfolder": "anim", "type": "output"}],
        "animated": [True],
    }
    with Image.open(ctx.output_dir / "anim" / f"clip_00001_.{extension}") as saved:
        assert (saved.format, saved.size, getattr(saved, "n_frames", 1)) == (format_, (6, 4), 3)


async def test_an_animated_webp_of_one_frame_is_reported_as_not_animated(ctx: FakeContext) -> None:
    result = await run(ctx, "SaveAnimatedWEBP", images=solid(6, 4, (1, 2, 3)))

    assert result.ui is not None
    assert result.ui["animated"] == [False]


@pytest.mark.parametrize(
    ("class_type", "format_"), [("SaveAnimatedWEBP", "WEBP"), ("SaveAnimatedPNG", "PNG")]
)
@pytest.mark.parametrize("frame_count", [1, 3])
async def test_a_large_output_setting_grows_the_file_and_it_stays_readable(
    ctx: FakeContext, class_type: str, format_: str, frame_count: int
) -> None:
    ctx.config = SimulatorConfig(large_output_bytes=3 * MB + 7)
    frames = [Image.new("RGB", (6, 4), (i * 80, 0, 0)) for i in range(frame_count)]

    result = await run(ctx, class_type, images=frames)

    assert result.ui is not None
    data = output_bytes(ctx, result.ui)
    assert abs(len(data) - (3 * MB + 7)) <= 16
    with Image.open(io.BytesIO(data)) as saved:
        assert (saved.format, getattr(saved, "n_frames", 1)) == (format_, frame_count)
        saved.seek(frame_count - 1)
        saved.load()


@pytest.mark.parametrize("class_type", ["SaveAnimatedWEBP", "SaveAnimatedPNG"])
async def test_a_large_output_is_written_in_chunks_with_flat_memory(
    ctx: FakeContext, class_type: str
) -> None:
    ctx.config = SimulatorConfig(large_output_bytes=50 * MB)
    frames = solid(32, 32, (0, 0, 0), count=4)

    tracemalloc.start()
    try:
        result = await run(ctx, class_type, images=frames)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.ui is not None
    file = result.ui["images"][0]
    assert abs((ctx.output_dir / file["filename"]).stat().st_size - 50 * MB) <= 16
    assert peak < 16 * 1024 * 1024


# -- the text-to-image graph --------------------------------------------------------------------


def ksampler_inputs(**overrides: Any) -> dict[str, Any]:
    prompt = Conditioning(("a fox",))
    inputs = {
        "model": ModelRef("model", "m.safetensors"),
        "seed": 7,
        "steps": 2,
        "cfg": 7.0,
        "sampler_name": "euler",
        "scheduler": "normal",
        "positive": prompt,
        "negative": prompt,
        "latent_image": Latent(512, 256, 1),
        "denoise": 1.0,
    }
    return inputs | overrides


async def text_to_image(
    ctx: FakeContext,
    *,
    seed: int = 1,
    positive: str = "a fox",
    negative: str = "blurry",
    ckpt: str = "v1-5-pruned-emaonly-fp16.safetensors",
    steps: int = 3,
) -> bytes:
    """The frontend 1.27.10 default graph; returns the saved PNG's bytes."""
    model, clip, vae = (await run(ctx, "CheckpointLoaderSimple", ckpt_name=ckpt)).outputs
    (pos,) = (await run(ctx, "CLIPTextEncode", text=positive, clip=clip)).outputs
    (neg,) = (await run(ctx, "CLIPTextEncode", text=negative, clip=clip)).outputs
    (latent,) = (await run(ctx, "EmptyLatentImage", width=48, height=32, batch_size=1)).outputs
    sampler_inputs = ksampler_inputs(
        model=model, seed=seed, steps=steps, positive=pos, negative=neg, latent_image=latent
    )
    (sampled,) = (await run(ctx, "KSampler", **sampler_inputs)).outputs
    (images,) = (await run(ctx, "VAEDecode", samples=sampled, vae=vae)).outputs
    saved = await run(ctx, "SaveImage", images=images, filename_prefix="t2i")
    assert saved.ui is not None
    return output_bytes(ctx, saved.ui)


async def test_the_same_inputs_give_identical_png_bytes(ctx: FakeContext) -> None:
    assert await text_to_image(ctx) == await text_to_image(ctx)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 2},
        {"positive": "a cat"},
        {"negative": "dark"},
        {"ckpt": "other.safetensors"},
        {"steps": 4},
    ],
)
async def test_a_different_seed_prompt_or_model_gives_a_different_png(
    ctx: FakeContext, change: dict[str, Any]
) -> None:
    assert await text_to_image(ctx, **change) != await text_to_image(ctx)


async def test_vae_decode_gives_the_pixel_size_of_the_empty_latent(ctx: FakeContext) -> None:
    (latent,) = (await run(ctx, "EmptyLatentImage", width=100, height=64, batch_size=2)).outputs
    (images,) = (
        await run(ctx, "VAEDecode", samples=latent, vae=ModelRef("vae", "ae.safetensors"))
    ).outputs

    assert latent == Latent(96, 64, 2)
    assert [image.size for image in images] == [(96, 64), (96, 64)]
    assert images[0].tobytes() != images[1].tobytes()


async def test_the_frontends_z_image_default_graph_runs(ctx: FakeContext) -> None:
    unet_inputs = {"unet_name": "z_image_turbo_bf16.safetensors", "weight_dtype": "default"}
    (unet,) = (await run(ctx, "UNETLoader", **unet_inputs)).outputs
    (model,) = (await run(ctx, "ModelSamplingAuraFlow", model=unet, shift=3.0)).outputs
    (clip,) = (
        await run(ctx, "CLIPLoader", clip_name="qwen_3_4b.safetensors", type="lumina2")
    ).outputs
    (vae,) = (await run(ctx, "VAELoader", vae_name="ae.safetensors")).outputs
    (latent,) = (await run(ctx, "EmptySD3LatentImage", width=64, height=48, batch_size=1)).outputs
    (text,) = (await run(ctx, "CLIPTextEncode", text="a fox", clip=clip)).outputs
    sampler_inputs = ksampler_inputs(
        model=model, sampler_name="res_multistep", positive=text, negative=text, latent_image=latent
    )
    (sampled,) = (await run(ctx, "KSampler", **sampler_inputs)).outputs
    (images,) = (await run(ctx, "VAEDecode", samples=sampled, vae=vae)).outputs

    assert (clip, vae) == (
        ModelRef("clip", "qwen_3_4b.safetensors"),
        ModelRef("vae", "ae.safetensors"),
    )
    assert model.kind == "model" and "z_image_turbo_bf16" in model.name
    assert [image.size for image in images] == [(64, 48)]


async def test_ksampler_reports_each_step_with_a_small_preview(ctx: FakeContext) -> None:
    ctx.config = replace(ctx.config, preview_size=32)

    result = await run(ctx, "KSampler", **ksampler_inputs(steps=4))

    assert ctx.steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [preview.size for preview in ctx.previews] == [(32, 16)] * 4
    assert len({preview.tobytes() for preview in ctx.previews}) == 4
    (latent,) = result.outputs
    assert (latent.width, latent.height, latent.batch) == (512, 256, 1)
    assert latent.fingerprint


async def test_ksampler_stops_when_the_prompt_is_interrupted(ctx: FakeContext) -> None:
    ctx.interrupt_after_step = 2

    with pytest.raises(Interrupted):
        await run(ctx, "KSampler", **ksampler_inputs(steps=10))

    assert ctx.steps == [(1, 10), (2, 10)]
