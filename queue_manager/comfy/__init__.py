"""ComfyUI protocol knowledge shared by the queue manager, the worker and the simulator."""
