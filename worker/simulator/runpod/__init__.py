"""A stand-in for a RunPod serverless endpoint running worker-comfyui: the job API (`/run`,
`/runsync`, `/status/{id}`, `/cancel/{id}`, `/health`) in front of simulator replicas, each
replica a worker that runs one job at a time the way worker-comfyui's handler does."""
