"""Motion between consecutive frames: optical flow (OpenCV's DIS), the
forward-backward consistency mask of Ruder et al. (2016), warping, scene cuts.

All of it is computed on the original (unstylised) frames at the size being
optimised, and is shared by the warm start, the temporal loss and the
temporal warp error E_warp of Lai et al. (2018).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from framestyle.media.images import full_scale

# A frame is a cut (start cold) when less of it than this is explained by the
# flow from the previous frame, or when what is explained still differs a lot.
MIN_CONSISTENT = 0.5
MAX_WARPED_ERROR = 0.08  # mean absolute difference in [0, 1] over consistent pixels


@dataclass(frozen=True)
class Motion:
    """How frame t relates to frame t-1."""

    flow: np.ndarray  # HxWx2 float32: for each pixel of t, its offset to where it was in t-1
    mask: np.ndarray  # HxW float32: 1 where the flow is trustworthy (not occluded, no motion boundary)
    cut: bool  # a new shot: the previous frame says nothing about this one

    @property
    def coverage(self) -> float:
        return float(self.mask.mean())


def gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow from RGB ``source`` to RGB ``target`` (OpenCV's DIS on their
    gray): source(x) ~ target(x + flow(x)). The built-in ``--flow dis``."""
    import cv2

    # OpenCV's stubs leave out the DIS constructor, which the module has.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    return dis.calc(gray(source), gray(target), None)


Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (source, target) RGB -> HxWx2 float32, as dis_flow


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """``image`` (HxWxC) sampled at x + flow(x): a frame t-1 image brought to
    frame t, bilinearly (E_warp's warp, Lai et al.) or bicubically (sharper:
    a bilinear warp blurs each frame a little, and a chain of them a lot)."""
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1],
                     interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s mask: 0 where forward and backward flow disagree
    (occlusion, disocclusion), where the flow has a strong edge (motion
    boundary) or where it points outside the previous frame (newly in view),
    1 elsewhere."""
    import cv2

    forward_there = warp(forward, backward)  # forward flow at each pixel's position in t-1
    round_trip = backward + forward_there
    magnitude = (backward**2).sum(-1) + (forward_there**2).sum(-1)
    occluded = (round_trip**2).sum(-1) > 0.01 * magnitude + 0.5
    gx_u, gy_u = cv2.Sobel(backward[..., 0], cv2.CV_32F, 1, 0) / 8, cv2.Sobel(backward[..., 0], cv2.CV_32F, 0, 1) / 8
    gx_v, gy_v = cv2.Sobel(backward[..., 1], cv2.CV_32F, 1, 0) / 8, cv2.Sobel(backward[..., 1], cv2.CV_32F, 0, 1) / 8
    gradient = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2
    boundary = gradient > 0.01 * (backward**2).sum(-1) + 0.002
    height, width = backward.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    source_x, source_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    outside = (source_x < 0) | (source_x > width - 1) | (source_y < 0) | (source_y > height - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


def estimate(previous: np.ndarray, current: np.ndarray, flow: Flow = dis_flow) -> Motion:
    """Flow from ``current`` back to ``previous`` (HxWx3 uint8 RGB, same size),
    its consistency mask, and whether ``current`` starts a new shot; ``flow``
    estimates both ways (``--flow``)."""
    backward = np.asarray(flow(current, previous), dtype=np.float32)
    forward = np.asarray(flow(previous, current), dtype=np.float32)
    if backward.shape != (*current.shape[:2], 2) or forward.shape != backward.shape:
        raise ValueError(f"the flow is {backward.shape[:3]}, not {current.shape[0]}x{current.shape[1]}x2")
    mask = consistency_mask(backward, forward)
    warped = warp(previous, backward).astype(np.float32)
    error = np.abs(warped - current.astype(np.float32)).mean(-1) / 255.0
    covered = mask.sum()
    mean_error = float((error * mask).sum() / covered) if covered else 1.0
    cut = mask.mean() < MIN_CONSISTENT or mean_error > MAX_WARPED_ERROR
    return Motion(backward, mask, bool(cut))


def warp_error(stylised: np.ndarray, previous_stylised: np.ndarray, motion: Motion, cubic: bool = False) -> float:
    """E_warp (Lai et al. 2018): mean squared difference, over the pixels the
    flow explains, between a stylised frame and the previous stylised frame
    warped to it (bilinearly as Lai et al., or bicubically); colours in [0, 1]."""
    white = full_scale(stylised)
    warped = warp(previous_stylised, motion.flow, cubic).astype(np.float64) / white
    diff = ((stylised.astype(np.float64) / white - warped) ** 2).mean(-1)
    covered = motion.mask.sum()
    return float((diff * motion.mask).sum() / covered) if covered else float("nan")
