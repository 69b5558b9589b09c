"""Where a video is split for ``--batch-size``: contiguous segments, one per
frame of the batch, each with its own warm-start chain.

A boundary goes where an even split puts it, or to a known scene cut near
there (a cut starts cold anyway, so nothing shows; the plan knows the cuts
only where it had to decode the video to count its frames). Elsewhere the
next segment starts ``OVERLAP`` frames early (its *head*) and those frames
are written as a cross-fade from the earlier segment's result to the later
one's, so the switch from one warm-start chain to the other leaves no
visible jump.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Segments shorter than this would spend most of their frames starting cold.
MIN_SEGMENT = 8
# Frames a segment starts before the boundary when it is not at a cut.
OVERLAP = 4
# Frames a chunk of a split video holds, for a writer that encodes chunks
# apart and joins them: fixed by frame count, so that a video is cut into
# the same chunks (and gives the same bytes) however many workers ran it;
# 20 s at 24 frames/s, longer than x264's keyframe interval, so chunks add
# no keyframes, and short enough that the last chunk's encode is a small
# part of the tail.
CHUNK = 480


@dataclass(frozen=True)
class Segment:
    start: int  # the first frame it optimises (a head frame when it overlaps the last segment)
    owned: int  # the first frame whose output it owns
    end: int  # one past its last frame

    @property
    def head(self) -> range:
        return range(self.start, self.owned)


def plan_segments(count: int, wanted: int, cuts: Iterable[int], overlap: int | None = None) -> list[Segment]:
    """At most ``wanted`` segments of a ``count``-frame video whose frames
    in ``cuts`` start new shots."""
    overlap = OVERLAP if overlap is None else overlap
    wanted = max(1, min(wanted, count // MIN_SEGMENT))
    cut_set = sorted(set(cuts))
    boundaries: list[tuple[int, bool]] = []
    window = count // (4 * wanted)
    for k in range(1, wanted):
        ideal = round(k * count / wanted)
        low = (boundaries[-1][0] if boundaries else 0) + MIN_SEGMENT
        near = [c for c in cut_set if abs(c - ideal) <= window and c >= low]
        if near:
            boundaries.append((min(near, key=lambda c: abs(c - ideal)), True))
        else:
            boundaries.append((ideal, False))
    segments = []
    edges = [(0, True), *boundaries, (count, True)]
    for (owned, at_cut), (end, _) in zip(edges, edges[1:], strict=False):
        start = owned if at_cut else max(0, owned - overlap)
        segments.append(Segment(start, owned, end))
    return segments


def chunk_ranges(count: int) -> list[tuple[int, int]]:
    """The (first, end) frames of each chunk of a ``count``-frame video."""
    return [(first, min(first + CHUNK, count)) for first in range(0, count, CHUNK)]


def fade_weight(segment: Segment, index: int) -> float:
    """How much of the later segment's head frame ``index`` goes into the
    written frame: rising over the overlap, never 0 or 1."""
    return (index - segment.start + 1) / (len(segment.head) + 1)


def cross_fade(earlier: np.ndarray, later: np.ndarray, weight: float) -> np.ndarray:
    mixed = (1 - weight) * earlier.astype(np.float32) + weight * later.astype(np.float32)
    return np.clip(np.rint(mixed), 0, np.iinfo(earlier.dtype).max).astype(earlier.dtype)


def describe(segments: list[Segment]) -> str:
    starts = ", ".join(str(s.owned + 1) for s in segments)
    faded = sum(1 for s in segments if s.head)
    text = f"{len(segments)} segments from frames {starts}"
    if faded:
        text += f", {faded} cross-faded over {max(len(s.head) for s in segments)} frames"
    return text
