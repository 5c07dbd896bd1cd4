"""Comfy Workshop queue manager: one fair GPU queue for a room full of ComfyUI pages."""

__version__ = "0.1.0"
