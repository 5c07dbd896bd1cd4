"""How long a job will hold a GPU, learnt from how long finished jobs held one (pure).

A job's *shape* names what decides its run time, so that jobs of the same shape can learn from
each other: its *family* (the node types of its prompt and its image size and batch) and its
sampler *steps*. The store keeps the latest run times per GPU and family, per family, per GPU
and room-wide (`store.runtimes`); `RunHistory.expected` reads them most specific first:

1. this GPU, this family;  2. this family on any GPU;  3. this GPU, any job;  4. any job;
5. `DEFAULT_RUN_SECONDS` before anything has finished.

At each level a straight line through (steps, seconds) is fitted when the samples have more
than one step count (a 40-step job takes about twice a 20-step one of the same family), so a
shape never seen before is still estimated from its family. A GPU is a pull worker, or a push
endpoint (its slots share one history: they are the same machine type).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from queue_manager.core.endpoints import endpoint_of
from queue_manager.core.jobs import ApiPrompt

# Said before any job finished: a short SD 1.5 image on a workshop GPU.
DEFAULT_RUN_SECONDS = 30.0
# Inputs that change how much work a node does, besides the sampler's steps.
SIZE_INPUTS = ("width", "height", "batch_size", "length")
# How many same-steps samples make their median more trustworthy than a fitted line.
SAME_STEPS_ENOUGH = 3


@dataclass(frozen=True)
class Shape:
    family: str
    steps: int

    def key(self) -> str:
        """The shape as stored on the job: `family:steps`."""
        return f"{self.family}:{self.steps}"


UNKNOWN_SHAPE = Shape("", 0)


def shape_of(prompt: ApiPrompt) -> Shape:
    """The run-time shape of a prompt: its node types and sizes, and its total sampler steps."""
    steps, sizes = 0, set()
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if not isinstance(value, int) or isinstance(value, bool):
                continue  # a link ([node, slot]) or a non-number: decided elsewhere
            if name == "steps":
                steps += value
            elif name in SIZE_INPUTS:
                sizes.add((name, value))
    types = sorted({node["class_type"] for node in prompt.values()})
    canon = json.dumps([types, sorted(sizes)], separators=(",", ":"))
    return Shape(hashlib.sha1(canon.encode()).hexdigest()[:12], steps)


def parse_shape(raw: str | None) -> Shape:
    """A stored shape key back (a job queued before shapes were kept has none)."""
    family, _, steps = (raw or "").partition(":")
    return Shape(family, int(steps)) if family and steps.isdigit() else UNKNOWN_SHAPE


def gpu_key(worker: str) -> str:
    """Whose run times a worker's jobs add to: the worker's own, or its endpoint's."""
    return endpoint_of(worker) or worker


@dataclass(frozen=True)
class Sample:
    steps: int
    seconds: float

    def encode(self) -> str:
        return f"{self.seconds:.3f} {self.steps}"

    @staticmethod
    def decode(raw: str) -> Sample | None:
        seconds, _, steps = raw.partition(" ")
        try:
            return Sample(int(steps or 0), float(seconds))
        except ValueError:
            return None


def run_sample(
    worker: str,
    shape: Shape,
    claimed_at: float | None,
    started_at: float | None,
    finished_at: float | None,
) -> tuple[str, Sample] | None:
    """The run time a completed job adds to its GPU's history, or None if not measurable.

    A pull worker is busy from the claim to the finish. An endpoint's run starts at ComfyUI's
    `execution_start`: its cold start is measured apart (`endpoint_status`) and added by the
    estimate only when the endpoint is cold, so it is never counted twice.
    """
    key = gpu_key(worker)
    begin = started_at if key != worker else claimed_at
    if begin is None or finished_at is None or finished_at < begin:
        return None
    return key, Sample(shape.steps, finished_at - begin)


def fitted(samples: Iterable[Sample], steps: int) -> float | None:
    """Seconds for a `steps`-step job, from samples of comparable jobs (None: no samples)."""
    found = list(samples)
    if not found:
        return None
    same = [s.seconds for s in found if s.steps == steps]
    if len(same) >= SAME_STEPS_ENOUGH:
        return statistics.median(same)
    counts = {s.steps for s in found}
    if len(counts) >= 2:
        line = _line(found)
        if line is not None:
            return max(0.0, line[0] + line[1] * steps)
    if same:
        return statistics.median(same)
    typical = statistics.median(s.seconds for s in found)
    only = next(iter(counts))
    if len(counts) == 1 and only > 0 and steps > 0:
        return typical * steps / only  # one step count seen: scale by steps
    return typical


def _line(samples: list[Sample]) -> tuple[float, float] | None:
    """Least squares seconds = a + b * steps; None when the slope comes out negative (noise
    or a mix of unlike jobs: the median is the safer guess then)."""
    n = len(samples)
    mx = sum(s.steps for s in samples) / n
    my = sum(s.seconds for s in samples) / n
    sxx = sum((s.steps - mx) ** 2 for s in samples)
    if sxx == 0:
        return None
    b = sum((s.steps - mx) * (s.seconds - my) for s in samples) / sxx
    if b < 0:
        return None
    return my - b * mx, b


@dataclass(frozen=True)
class RunHistory:
    """Recent run times, newest first, as the store read them for one estimate."""

    exact: Mapping[tuple[str, str], tuple[Sample, ...]] = field(default_factory=dict)
    family: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    gpu: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    recent: tuple[Sample, ...] = ()

    def expected(self, gpu: str, shape: Shape) -> float:
        """Seconds a job of this shape holds this GPU (the GPU's key: `gpu_key`)."""
        levels: list[Iterable[Sample]] = []
        if shape.family:
            levels += [self.exact.get((gpu, shape.family), ()), self.family.get(shape.family, ())]
        levels += [self.gpu.get(gpu, ()), self.recent]
        for samples in levels:
            seconds = fitted(samples, shape.steps)
            if seconds is not None:
                return seconds
        return DEFAULT_RUN_SECONDS

    @property
    def measured(self) -> bool:
        return bool(self.recent)
