"""How a push run can end other than done or failed on ComfyUI: each maps to the job's state
in `slot` (the kinds raise them; the client errors are in `client`)."""

from __future__ import annotations


class ColdStartTimeout(Exception):
    """The endpoint did not take the job within its cold-start timeout: back to the queue."""


class PromptLost(Exception):
    """The endpoint no longer knows the submitted job (lost with its replica): back to the
    queue."""


class OutputMissing(Exception):
    """An output the run reported can be found nowhere: back to the queue."""
