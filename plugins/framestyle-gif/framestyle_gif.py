"""Animated GIF and WebP outputs for framestyle: ``-o out.gif`` or ``-o out.webp``.

Both formats need every frame before the file can be written, so frames are
kept in memory (animations are short) and the file is written at close, to a
temporary name first and renamed, so a final name never holds half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np

import framestyle
from framestyle.types import SourceInfo, WriterSpec


class AnimationWriter:
    def __init__(self, target: Path, info: SourceInfo) -> None:
        self.target = target
        self.frames: list[np.ndarray] = []
        # Frame delay in milliseconds from the source's rate; GIF stores 1/100 s.
        self.duration = 1000.0 / (info.fps or 10.0)

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        if not self.frames:
            raise ValueError(f"{self.target}: no frame was written")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        partial = self.target.with_name(f".{self.target.name}.framestyle-partial")
        extension = self.target.suffix.lower()
        options = {"duration": self.duration, "loop": 0}
        if extension == ".webp":
            options["lossless"] = True
        try:
            iio.imwrite(partial, np.stack(self.frames), extension=extension, plugin="pillow", **options)
            os.replace(partial, self.target)
        finally:
            partial.unlink(missing_ok=True)

    def abort(self) -> None:
        self.frames.clear()


def is_complete(target: Path) -> bool:
    """Written only by renaming a finished file; still, check it decodes."""
    try:
        iio.improps(target, plugin="pillow")
        return True
    except Exception:
        return False


@framestyle.hookimpl
def register_writers(register):
    register(WriterSpec("gif", (".gif",), AnimationWriter, is_complete,
                        description="animated GIF (frame delays from the source's frame rate)"))
    register(WriterSpec("webp-animation", (".webp",), AnimationWriter, is_complete, priority=-1,
                        description="animated WebP (lossless); use --writer webp-animation"))
