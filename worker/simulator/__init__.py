"""A ComfyUI simulator: ComfyUI's real HTTP and WebSocket protocol (as recorded in
shared/comfyui-reference), executing core nodes cheaply on the CPU. Stands in for a GPU in
tests, demos and rehearsals (`comfy-workshop simulator`)."""
