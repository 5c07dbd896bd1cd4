"""The per-user ComfyUI pages and our small frontend extension. Not built yet (issue 5)."""
