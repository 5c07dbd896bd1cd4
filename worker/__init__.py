"""The GPU worker agent that runs next to a ComfyUI. Not built yet (issue 4)."""
