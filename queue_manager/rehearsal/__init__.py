"""`comfy-workshop rehearse`: N stand-in participants against a running workshop, and the report
the instructor reads before the day.

Pure parts (no I/O, tested by tables): `prompts` (which prompt each participant sends), `stats`
(time-to-image, run order and fairness, GPU busy time, memory), `report` (the text and HTML
report). The rest talks to the workshop: `client` (HTTP as the page and the instructor's
dashboard do), `participant` (one participant over the ComfyUI protocol), `browser` (one in a
real Chromium page), `display` (the live progress) and `run` (the rehearsal, start to clean-up).
"""
