"""Still images in and out: PNG, JPEG, WebP, BMP and TIFF via Pillow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from framestyle.hookspecs import hookimpl
from framestyle.media.images import (
    IMAGE_EXTENSIONS,
    deep_images,
    drop_stale_partials,
    image_size,
    is_complete_image,
    read_image,
    write_image_atomic,
)
from framestyle.types import LoaderSpec, SourceInfo, WriterSpec


class ImageSource:
    """A still image: one frame. Opening reads only the header, so a file that
    is not an image, or claims too many pixels for ``--max-pixels``, is
    refused before anything is decoded; the pixels are decoded on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        width, height = image_size(path)
        self.info = SourceInfo(path, "image", width, height, frame_count=1)

    def frames(self) -> Iterator[np.ndarray]:
        # The engine has checked the header's size against --max-pixels.
        yield read_image(self.path, max_pixels=self.info.width * self.info.height)

    def close(self) -> None:
        pass


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
        drop_stale_partials(self.target)

    def abort(self) -> None:
        self.frame = None  # nothing reached the disk


@hookimpl
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    register(LoaderSpec("image", IMAGE_EXTENSIONS, ImageSource,
                        description="still images via Pillow (EXIF orientation applied)"))


@hookimpl
def register_writers(register: Callable[[WriterSpec], None]) -> None:
    register(WriterSpec("image", (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"),
                        ImageWriter, is_complete_image, description="one still image per input",
                        check=deep_images))
