"""The default pipeline: where a frame's optimisation starts, and the
optimisation itself (:mod:`framestyle.transfer.frame`) for one frame."""

from __future__ import annotations

from pathlib import Path

import torch

from framestyle.hookspecs import hookimpl
from framestyle.media.images import read_image, resize
from framestyle.transfer.pixels import to_tensor
from framestyle.transfer.warm import warped_previous
from framestyle.types import FrameJob, StylizeResult


@hookimpl(trylast=True)
def init_image(job: FrameJob) -> torch.Tensor:
    init = job.settings.init
    _, _, height, width = job.content.shape
    if job.warm:
        # Warm start (Ruder et al.): the previous result warped by the flow,
        # everywhere. Where the flow is uncertain (the mask's zeros) it is
        # still the previous stylisation of nearby content, a closer start
        # than the unstylised frame (docs/performance/speed.md: warm frames).
        warped, _ = warped_previous(job)
        return warped.clone()
    if init == "content":
        return job.content.clone()
    if init == "noise":
        # Seeded per frame so a rerun (or a resumed run) reproduces it exactly.
        generator = torch.Generator().manual_seed(job.settings.seed * 1_000_003 + job.index)
        return torch.rand(job.content.shape, generator=generator).to(job.content.device)
    rgb = resize(read_image(Path(init)), width, height)
    return to_tensor(rgb, job.content.device)


@hookimpl(trylast=True)
def stylize(job: FrameJob, init: torch.Tensor) -> StylizeResult:
    """The built-in optimisation (:mod:`framestyle.transfer.frame`), which
    the engine runs for many frames together."""
    return job.context.optimise(job, init)
