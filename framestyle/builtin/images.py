"""Still images in and out: PNG, JPEG, WebP, BMP and TIFF via Pillow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from framestyle.hookspecs import hookimpl
from framestyle.images import IMAGE_EXTENSIONS, is_complete_image, read_image, write_image_atomic
from framestyle.types import LoaderSpec, SourceInfo, WriterSpec


class ImageSource:
    """A decoded still image: one frame. Decoding happens in ``open`` so a bad
    file fails before any work is done for it."""

    def __init__(self, path: Path) -> None:
        self.rgb = read_image(path)
        height, width = self.rgb.shape[:2]
        self.info = SourceInfo(path, "image", width, height, frame_count=1)

    def frames(self) -> Iterator[np.ndarray]:
        yield self.rgb

    def close(self) -> None:
        self.rgb = np.empty((0, 0, 3), np.uint8)


class ImageWriter:
    """Writes the single frame of an image source atomically on close."""

    def __init__(self, target: Path, info: SourceInfo) -> None:
        self.target = target
        self.frame: np.ndarray | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.frame is not None:
            raise ValueError(f"{self.target}: an image output takes one frame; use a video writer")
        self.frame = frame

    def close(self) -> None:
        if self.frame is None:
            raise ValueError(f"{self.target}: no frame was written")
        write_image_atomic(self.target, self.frame)

    def abort(self) -> None:
        self.frame = None  # nothing reached the disk


@hookimpl
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    register(LoaderSpec("image", IMAGE_EXTENSIONS, ImageSource,
                        description="still images via Pillow (EXIF orientation applied)"))


@hookimpl
def register_writers(register: Callable[[WriterSpec], None]) -> None:
    register(WriterSpec("image", (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"),
                        ImageWriter, is_complete_image, description="one still image per input"))
