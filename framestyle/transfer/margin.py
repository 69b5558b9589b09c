"""A margin of canvas around the image, optimised with it and cropped away.

A pixel on the image's edge lies in fewer of VGG-19's 3×3 windows than one
inside, at every layer, and its outermost windows see padding rather than
picture: the edge rows come out as a line, lighter or darker, or with less
texture than the inside, whichever way the convolutions pad
(docs/guide/borders.md). Optimising a canvas a few pixels wider, its margin filled with the
picture mirrored, puts the edges inside; the margin is cut off at the end.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from framestyle.media.motion import Motion
from framestyle.types import FrameJob


def fitting_margin(margin: int, height: int, width: int) -> int:
    """``margin``, or less where the image is too small to mirror that much."""
    return max(0, min(margin, height - 1, width - 1))


def warm_margin(margin: int) -> int:
    """A warm video frame's margin: half the others'. It starts from the
    previous result, whose edges are already right, and needs only to keep
    them so; a full margin made a warm frame cost 1.58× at 192 px, more pixels
    and more iterations before it settles (docs/guide/borders.md)."""
    return margin // 2


def widen(image: torch.Tensor, margin: int) -> torch.Tensor:
    """1xCxHxW mirrored ``margin`` pixels out on every side."""
    return torch.nn.functional.pad(image, (margin,) * 4, mode="reflect") if margin else image


def crop(image: torch.Tensor, margin: int) -> torch.Tensor:
    """The image inside a :func:`widen`\\ ed canvas."""
    return image[..., margin:-margin, margin:-margin] if margin else image


def widen_array(array: np.ndarray, margin: int) -> np.ndarray:
    """HxW(xC) mirrored ``margin`` pixels out on every side, as :func:`widen`."""
    return np.pad(array, ((margin, margin), (margin, margin)) + ((0, 0),) * (array.ndim - 2), mode="reflect")


def widen_flow(flow: np.ndarray, margin: int) -> np.ndarray:
    """HxWx2 flow mirrored like the frames: in the margin beside the image
    its horizontal part points the other way, above and below its vertical
    part, so the mirrored previous frame warped by it is the warped previous
    frame mirrored (what the margin starts from)."""
    wide = widen_array(flow, margin)
    wide[:, :margin, 0] *= -1
    wide[:, -margin:, 0] *= -1
    wide[:margin, :, 1] *= -1
    wide[-margin:, :, 1] *= -1
    return wide


def widen_job(job: FrameJob, margin: int) -> FrameJob:
    """The frame's job on the wider canvas: its content, previous frames, flow,
    flow mask and region masks mirrored, so a warm frame's margin is held to where it
    starts (the warped previous result mirrored) as the inside is, and stays
    steady. Losses are built from it as from any job, so plugin losses need
    know nothing of it. ``scratch`` starts empty: what plugins shared there
    is the frame's size, not the canvas's."""
    if not margin:
        return job
    motion = job.motion
    if motion is not None:
        motion = Motion(widen_flow(motion.flow, margin), widen_array(motion.mask, margin), motion.cut)

    def wider(frame: np.ndarray | None) -> np.ndarray | None:
        return None if frame is None else widen_array(frame, margin)

    regions = tuple(dataclasses.replace(region, mask=widen_array(region.mask, margin)) for region in job.regions)
    return dataclasses.replace(job, content=widen(job.content, margin), motion=motion, scratch={},
                               previous_rgb=wider(job.previous_rgb), previous_source=wider(job.previous_source),
                               regions=regions)
