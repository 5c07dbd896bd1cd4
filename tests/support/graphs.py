"""ComfyUI API-format graphs the tests submit (every node exists in the simulator)."""

from __future__ import annotations

from typing import Any

# A 32x24 image saved under t/: the smallest run that writes a file.
SAVE = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 0x3366CC},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t/e2e"}},
}


def sampler(steps: int) -> dict[str, Any]:
    """The default text-to-image graph with `steps` sampler steps (the simulator can be told
    to take a while per step, so that a job can be caught running)."""
    return {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "s"}},
    }


def simple_prompt(prefix: str = "cw/test") -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def invert_and_preview(prefix: str) -> dict[str, Any]:
    """Core nodes any ComfyUI runs on a CPU: a red image inverted and saved under `prefix`,
    beside a preview of the original (a temp output)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 40, "height": 24, "batch_size": 1, "color": 0xFF0000},
        },
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": prefix},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
