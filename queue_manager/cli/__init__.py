"""The `comfy-workshop` command: its subcommands and the processes `up` starts (a private
Redis, simulated GPUs, agents)."""
