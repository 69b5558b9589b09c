"""Farneback's dense optical flow (OpenCV's ``calcOpticalFlowFarneback``)
for framestyle's videos: ``--flow farneback``.

An example of a flow plugin. A flow gets two RGB frames of one size and
returns, for each pixel of the first, its offset to where it is in the
second; framestyle calls it both ways and makes the consistency mask, the
scene cuts and E_warp from it, as for the built-in DIS.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

import framestyle
from framestyle.types import FlowSpec


def farneback(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """HxWx2 float32 offsets with source(x) ~ target(x + flow(x))."""
    first, second = (cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (source, target))
    # A five-level pyramid, 15 px windows, three iterations: OpenCV's tutorial values.
    flow = cv2.calcOpticalFlowFarneback(first, second, None, pyr_scale=0.5, levels=5, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return flow.astype(np.float32)


@framestyle.hookimpl
def register_flows(register: Callable[[FlowSpec], None]) -> None:
    register(FlowSpec("farneback", farneback, "Farneback's dense optical flow (OpenCV): smoother, "
                                              "slower than DIS on large frames"))
