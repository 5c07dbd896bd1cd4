"""The simulator's node registry: class_type -> implementation, with failure injection.

Every implementation is wrapped so that a node type listed in `config.fail_class_types`
raises before doing anything, wherever it appears in a graph, and so that inputs the node
does not declare are dropped (ComfyUI ignores extra inputs in a prompt).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from worker.simulator.nodes import images, inspection, sampling, saving
from worker.simulator.runtime import NodeContext, NodeResult

NodeImpl = Callable[..., Awaitable[NodeResult]]


class SimulatedFailure(RuntimeError):
    """Raised by a node whose type the simulator was configured to fail."""


def _registered(impl: NodeImpl) -> NodeImpl:
    declared = frozenset(list(inspect.signature(impl).parameters)[1:])  # all but ctx

    @functools.wraps(impl)
    async def run(ctx: NodeContext, /, **inputs: Any) -> NodeResult:
        if ctx.class_type in ctx.config.fail_class_types:
            raise SimulatedFailure(
                f"Simulated failure: node {ctx.node_id} ({ctx.class_type}) is listed in the "
                "simulator's fail_class_types"
            )
        return await impl(ctx, **{k: v for k, v in inputs.items() if k in declared})

    return run


_IMPLEMENTATIONS: dict[str, NodeImpl] = {
    "EmptyImage": images.empty_image,
    "LoadImage": images.load_image,
    "ImageBlur": images.image_blur,
    "ImageInvert": images.image_invert,
    "ImageScale": images.image_scale,
    "MaskToImage": images.mask_to_image,
    "GetImageSize": inspection.get_image_size,
    "PreviewAny": inspection.preview_any,
    "SaveImage": saving.save_image,
    "PreviewImage": saving.preview_image,
    "SaveAnimatedWEBP": saving.save_animated_webp,
    "SaveAnimatedPNG": saving.save_animated_png,
    "CheckpointLoaderSimple": sampling.checkpoint_loader_simple,
    "UNETLoader": sampling.unet_loader,
    "CLIPLoader": sampling.clip_loader,
    "VAELoader": sampling.vae_loader,
    "ModelSamplingAuraFlow": sampling.model_sampling_aura_flow,
    "CLIPTextEncode": sampling.clip_text_encode,
    "EmptyLatentImage": sampling.empty_latent_image,
    "EmptySD3LatentImage": sampling.empty_latent_image,
    "KSampler": sampling.ksampler,
    "VAEDecode": sampling.vae_decode,
}

NODES: dict[str, NodeImpl] = {
    class_type: _registered(impl) for class_type, impl in _IMPLEMENTATIONS.items()
}

__all__ = ["NODES", "NodeImpl", "SimulatedFailure"]
