"""Style images: read from files or folders, and blended by weight."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framestyle.errors import InputError, UsageError
from framestyle.media.images import IMAGE_EXTENSIONS, read_image

# A style image's short side below this leaves VGG-19's deepest style layer
# fewer than 4x4 positions, most of them touching the border.
MIN_STYLE_SIDE = 64


def read_style(path: Path) -> list[np.ndarray]:
    """A style image, or every image in a style folder (one style, blended
    equally), in natural order."""
    if path.is_dir():
        from framestyle.engine.planning.inputs import walk

        files = [p for p, _ in walk(path, exclude=None) if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise UsageError(f"style folder {path}: no images in it")
        return [read_style_image(p) for p in files]
    return [read_style_image(path)]


def read_style_image(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except InputError as exc:
        raise UsageError(f"style image {path}: {exc}") from None


def blend_weights(weights: list[float] | None, count: int) -> list[float]:
    """``--style-weights`` (checked by :meth:`Settings.check`), one per style, summing to 1 (equal when not given)."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise UsageError(f"--style-weights has {len(weights)} weight(s) for {count} style(s); give one per --style")
    return [w / sum(weights) for w in weights]
