"""Push dispatch: GPUs the queue manager calls itself (`core.endpoints`).

Each endpoint slot is a worker in the queue; `dispatcher` runs the slots of the endpoints this
process holds, `slot` claims and heartbeats like an agent would, and the kinds run one job each:
`comfyui` (POST /prompt, follow /ws, poll /history through a load balancer). The service's
workers' use cases are the only way in.
"""
