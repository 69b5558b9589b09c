"""Decoding and optical flow one frame ahead, beside the optimisation.

The optimisation of frame t does not need frame t+1, and the flow from t to
t+1 is computed on the original frames, so both can be ready before frame
t is done: a worker thread decodes the next frame, brings it to its working
size and estimates its motion while the device optimises the current one
(OpenCV and the decoders release the GIL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from framestyle.media.motion import Motion


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    working: np.ndarray  # the frame at the size it is optimised at (uint8 RGB)
    out_size: tuple[int, int]  # (width, height) its result is written at
    motion: Motion | None  # from the frame before it in the file (None for the first)


class ReadAhead:
    """``frames`` (index, frame) as :class:`DecodedFrame`, prepared one ahead in a
    worker thread; an error reading a frame is raised where it is asked for."""

    def __init__(self, frames: Iterator[tuple[int, np.ndarray]],
                 working_frame: Callable[[np.ndarray], tuple[np.ndarray, tuple[int, int]]],
                 motion: Callable[[np.ndarray, np.ndarray], Motion]) -> None:
        self.frames = frames
        self.working_frame = working_frame
        self.motion = motion
        self.last: np.ndarray | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="framestyle-read")
        self.future: Future[DecodedFrame | None] = self.pool.submit(self.prepare_next)

    def prepare_next(self) -> DecodedFrame | None:
        item = next(self.frames, None)
        if item is None:
            return None
        index, rgb = item
        working, out_size = self.working_frame(rgb)
        motion = None
        if self.last is not None:
            motion = self.motion(self.last, working)
        self.last = working
        return DecodedFrame(index, working, out_size, motion)

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> DecodedFrame:
        frame = self.future.result()
        if frame is None:
            raise StopIteration
        self.future = self.pool.submit(self.prepare_next)
        return frame

    def close(self) -> None:
        """Stop reading; returns once the worker is idle, so the source can close."""
        self.pool.shutdown(wait=True, cancel_futures=True)
