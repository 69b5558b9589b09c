"""Where a warm video frame comes from: the previous stylisation brought to
this frame by the flow. The warm start and the temporal loss share it (they
are different plugins' hooks; ``job.scratch`` computes it once a frame)."""

from __future__ import annotations

import numpy as np
import torch

from framestyle.media.images import full_scale
from framestyle.media.motion import warp
from framestyle.transfer.pixels import to_tensor
from framestyle.types import FrameJob


def warped_previous(job: FrameJob) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous stylisation brought to this frame by the flow of the
    original frames, and the mask (1x1xHxW) of pixels the flow explains;
    shared by the warm start and the temporal loss through ``job.scratch``.

    ``--warm-from change``: this frame's own content plus what
    stylisation changed in the previous frame (stylised − source), warped
    bicubically. Where the flow is right that is the warped previous result;
    where it is wrong (a mouth opening, fast motion) the frame keeps its own
    content instead of the previous frame's, so it does not lag, and a steady
    result changes exactly as much as its source does. ``frame`` (the
    default): the previous result warped bilinearly (Ruder et al.'s start)."""
    if "warped_previous" not in job.scratch:
        assert job.previous_rgb is not None and job.motion is not None
        device = job.content.device
        if job.settings.warm_from == "change" and job.previous_source is not None:
            change = (job.previous_rgb.astype(np.float32) / full_scale(job.previous_rgb)
                      - job.previous_source.astype(np.float32) / full_scale(job.previous_source))
            moved = torch.from_numpy(warp(change, job.motion.flow, cubic=True)).permute(2, 0, 1)[None].to(device)
            warped = (job.content + moved).clamp(0, 1)
        else:
            warped = to_tensor(warp(job.previous_rgb, job.motion.flow), device)
        mask = torch.from_numpy(job.motion.mask)[None, None].to(device)
        job.scratch["warped_previous"] = (warped, mask)
    return job.scratch["warped_previous"]
