"""Part of a video, ``--start`` to ``--end``, read as if it were the whole.

A position is a frame number (``120``: the 120th frame, counted from 1, as
the progress and the report count them) or a time (``12.5s``: the first
frame shown at or after 12.5 seconds). ``--start`` is the first frame taken;
``--end`` a frame number is the last taken, a time the first left out, so
``--start 2s --end 4s`` is two seconds of frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator

import numpy as np

from framestyle.errors import InputError
from framestyle.media.sequence import SequenceSource
from framestyle.media.video import VideoSource
from framestyle.settings import POSITION
from framestyle.types import Source


def frame_index(text: str, fps: float | None, end: bool) -> int:
    """The 0-based index of the first frame a position leaves out (``end``)
    or takes (a start)."""
    match = POSITION.fullmatch(str(text).strip())
    assert match is not None  # refused by the settings' check
    if match["frame"] is not None:
        return int(match["frame"]) if end else int(match["frame"]) - 1
    if not fps:
        raise InputError(f"{'--end' if end else '--start'} {text}: the video has no frame rate to find a time by")
    # Frame i is shown at i / fps: the first at or after the time (a hair's
    # tolerance, so 0.5s at 30000/1001 fps does not miss the frame it names).
    return max(0, math.ceil(float(match["seconds"]) * fps - 1e-6))


class FrameWindow:
    """The frames of ``source`` from index ``first`` up to (not including) ``stop``."""

    def __init__(self, source: Source, first: int, stop: int | None) -> None:
        self.source, self.first, self.stop = source, first, stop
        info = source.info
        total = info.frame_count
        if total is not None and first >= total:
            raise InputError(f"--start: frame {first + 1} is past the video's end ({total} frames)")
        if stop is not None and stop <= first:
            raise InputError(f"--end: frame {stop} is not after --start's frame {first + 1}")
        count = self.length(total) if total is not None else None
        window = None
        if info.fps and count is not None:
            window = (first / info.fps, count / info.fps)
        self.info = dataclasses.replace(info, frame_count=count, window=window)

    @classmethod
    def of(cls, source: Source, start: str | None, end: str | None) -> FrameWindow:
        fps = source.info.fps
        first = frame_index(start, fps, end=False) if start else 0
        stop = frame_index(end, fps, end=True) if end else None
        return cls(source, first, stop)

    def length(self, total: int) -> int:
        """How many frames the window holds of a video of ``total``."""
        return max(0, min(total, self.stop if self.stop is not None else total) - self.first)

    def frames(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.frames_from(0))

    def frames_from(self, start: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index in the window, frame) from the window's frame ``start`` on."""
        for index, frame in frames_from(self.source, self.first + start):
            if self.stop is not None and index >= self.stop:
                return
            yield index - self.first, frame

    def close(self) -> None:
        self.source.close()


def frames_from(source: Source, start: int) -> Iterator[tuple[int, np.ndarray]]:
    """A source's (index, frame) from frame ``start`` on: a video file's
    sought where it can be, a sequence's read from its file, any other
    loader's decoded from its start."""
    if isinstance(source, (VideoSource, SequenceSource, FrameWindow)):
        return source.frames_from(start)
    return itertools.islice(enumerate(source.frames()), start, None)
