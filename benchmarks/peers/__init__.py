"""Worker-side modules of the systems measured beside ours (each started as its own process)."""
