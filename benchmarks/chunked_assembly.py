"""A split 1080p video's assembly as the mp4 writer does it, measured: kept
frames read back and encoded into chunks (each as a worker would), then
joined by stream copy with FFmpeg's concat demuxer. The simulated cluster of
``framestyle bench scale`` takes its per-frame costs (``Pace``) from this.

    .venv/bin/python benchmarks/chunked_assembly.py 960 120   # frames, frames a chunk
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from framestyle.builtin.video import video_chunk, video_join
from framestyle.engine.frame_store import FrameStore
from framestyle.media.encodings import FORMATS
from framestyle.types import SourceInfo

WIDTH, HEIGHT = 1920, 1080


def kept_frames(store: FrameStore, frames: int) -> None:
    """A panning, textured picture kept as PNGs, as segments keep their frames."""
    rng = np.random.default_rng(0)
    texture = (rng.random((HEIGHT // 8, WIDTH // 8 + frames, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    for index in range(frames):
        store.keep(index, np.ascontiguousarray(texture[:, 8 * index: 8 * index + WIDTH]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=int)
    parser.add_argument("chunk", type=int)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    output = work / "film.mp4"
    store = FrameStore(output)
    kept_frames(store, args.frames)
    info = SourceInfo(work / "silent.mp4", "video", WIDTH, HEIGHT, frame_count=args.frames, fps=24.0)
    chunks, started = [], time.perf_counter()
    for first in range(0, args.frames, args.chunk):
        end = min(first + args.chunk, args.frames)
        chunks.append(store.chunk(first, end, ".mp4"))
        writer = video_chunk(FORMATS[0], chunks[-1], info)
        for index in range(first, end):
            writer.write(store.kept(index))
        writer.close()
    encoded = time.perf_counter() - started
    started = time.perf_counter()
    video_join(FORMATS[0], chunks, output, info)
    joined = time.perf_counter() - started
    per_frame = 1000 / args.frames
    print(f"{args.frames} frames in {len(chunks)} chunks at {WIDTH}x{HEIGHT}: encoding {encoded * per_frame:.1f} ms "
          f"a frame; join {joined:.2f} s = {joined * per_frame:.2f} ms a frame")


if __name__ == "__main__":
    main()
