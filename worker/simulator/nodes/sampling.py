"""The text-to-image graph: model loaders, text encoding, latents, KSampler and VAEDecode.

Nothing is really computed. A latent carries a fingerprint of everything that would shape
the real picture (seed, model, prompts, sampler settings); VAEDecode draws a deterministic
picture from it, so the same inputs give identical files and any change gives new ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from PIL import Image

from worker.simulator.nodes import picture
from worker.simulator.runtime import Conditioning, Latent, ModelRef, NodeContext, NodeResult

# ComfyUI latents are 1/8 of the pixel size, so decoded images have sides that are
# multiples of 8 (a 100 px wide latent image decodes to 96 px).
LATENT_SCALE = 8


async def checkpoint_loader_simple(ctx: NodeContext, *, ckpt_name: str) -> NodeResult:
    return NodeResult(
        (ModelRef("model", ckpt_name), ModelRef("clip", ckpt_name), ModelRef("vae", ckpt_name))
    )


async def unet_loader(ctx: NodeContext, *, unet_name: str, weight_dtype: str) -> NodeResult:
    return NodeResult((ModelRef("model", unet_name),))


async def clip_loader(
    ctx: NodeContext, *, clip_name: str, type: str, device: str = "default"
) -> NodeResult:
    return NodeResult((ModelRef("clip", clip_name),))


async def vae_loader(ctx: NodeContext, *, vae_name: str) -> NodeResult:
    return NodeResult((ModelRef("vae", vae_name),))


async def model_sampling_aura_flow(
    ctx: NodeContext, *, model: ModelRef, shift: float
) -> NodeResult:
    # The patched model samples differently, so its identity (and the picture) follows shift.
    return NodeResult((ModelRef(model.kind, f"{model.name}+aura_flow(shift={shift})"),))


async def clip_text_encode(ctx: NodeContext, *, text: str, clip: ModelRef) -> NodeResult:
    return NodeResult((Conditioning((text,)),))


async def empty_latent_image(
    ctx: NodeContext, *, width: int, height: int, batch_size: int
) -> NodeResult:
    latent = Latent(_latent_side(width), _latent_side(height), batch_size)
    return NodeResult((latent,))


def _latent_side(pixels: int) -> int:
    return max(1, pixels // LATENT_SCALE) * LATENT_SCALE


async def ksampler(
    ctx: NodeContext,
    *,
    model: ModelRef,
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Conditioning,
    negative: Conditioning,
    latent_image: Latent,
    denoise: float,
) -> NodeResult:
    fingerprint = _fingerprint(
        model=model.name,
        seed=seed,
        steps=steps,
        cfg=cfg,
        sampler=sampler_name,
        scheduler=scheduler,
        positive=list(positive.texts),
        negative=list(negative.texts),
        denoise=denoise,
        latent=[latent_image.width, latent_image.height, latent_image.fingerprint],
    )
    size = picture.thumbnail_size(latent_image.width, latent_image.height, ctx.config.preview_size)
    # Previews fade from the seed's noise to a thumbnail of what VAEDecode will draw.
    start = picture.noise(seed, *size)
    goal = picture.render(picture_key(fingerprint, 0), *size)
    for step in range(1, steps + 1):
        ctx.check_interrupted()
        await asyncio.sleep(ctx.config.step_delay)
        await ctx.progress(step, steps)
        await ctx.preview(Image.blend(start, goal, step / steps))
    sampled = Latent(latent_image.width, latent_image.height, latent_image.batch, fingerprint)
    return NodeResult((sampled,))


def _fingerprint(**parts: object) -> str:
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def picture_key(fingerprint: str, batch_index: int) -> str:
    """What decides the picture of one image of a batch."""
    return f"{fingerprint}#{batch_index}"


async def vae_decode(ctx: NodeContext, *, samples: Latent, vae: ModelRef) -> NodeResult:
    # Decoding is one of the simulator's "slow" nodes: it takes one step's time.
    await asyncio.sleep(ctx.config.step_delay)

    def decode() -> list[Image.Image]:
        return [
            picture.render(picture_key(samples.fingerprint, index), samples.width, samples.height)
            for index in range(samples.batch)
        ]

    return NodeResult((await asyncio.to_thread(decode),))
