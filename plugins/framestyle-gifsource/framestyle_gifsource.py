"""Animated GIFs as framestyle video inputs: ``framestyle run anim.gif -o out.mp4``.

Frames are decoded one at a time; the frame rate is the GIF's mean frame delay.
A still (one-frame) GIF is read as an image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

import framestyle
from framestyle.errors import InputError
from framestyle.types import LoaderSpec, SourceInfo


class GifSource:
    def __init__(self, path: Path) -> None:
        try:
            self.image = Image.open(path)
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"not a GIF Pillow can read ({exc})") from None
        count = getattr(self.image, "n_frames", 1)
        delays = []
        for frame in ImageSequence.Iterator(self.image):
            delays.append(frame.info.get("duration", 100) or 100)
        fps = 1000.0 / (sum(delays) / len(delays))
        width, height = self.image.size
        self.info = SourceInfo(path, "video" if count > 1 else "image", width, height,
                               frame_count=count, fps=fps if count > 1 else None)

    def frames(self):
        for frame in ImageSequence.Iterator(self.image):
            yield np.asarray(frame.convert("RGB"))

    def close(self) -> None:
        self.image.close()


@framestyle.hookimpl
def register_loaders(register):
    register(LoaderSpec("gif", (".gif",), GifSource, kind="video",
                        description="animated GIF frames as a video source"))
