"""Styles by region (``--region MASK=STYLE``): each style's Gram matrices
taken over its mask's pixels only (guided Gram matrices, Gatys et al. 2017,
"Controlling Perceptual Factors in Neural Style Transfer").

A mask is a black-and-white image of any size, resized to the frame; grey
is a partial weight, so a soft edge blends the two styles there. The
pixels no mask covers take ``--style`` (or stay the content with
``--region-rest content``). A video uses the same masks for every frame:
they suit a camera that holds still.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framestyle.errors import UsageError
from framestyle.types import RegionMask


def parse_region(text: str) -> tuple[Path, Path]:
    """``MASK=STYLE`` as (mask, style)."""
    mask, sep, style = text.partition("=")
    if not sep or not mask or not style:
        raise UsageError(f"--region {text!r}: expected MASK=STYLE (a black-and-white image, then a style)")
    return Path(mask), Path(style)


def region_styles(settings_regions: list[str]) -> list[Path]:
    return [parse_region(text)[1] for text in settings_regions]


def read_mask(path: Path) -> np.ndarray:
    """A mask as HxW float32 in [0, 1] (white: inside)."""
    from PIL import Image

    from framestyle.media.images import read_image

    try:
        rgb = read_image(path)
    except Exception as error:
        raise UsageError(f"--region mask {path}: {error}") from None
    gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
    return gray / 255.0


def masks_at(masks: list[np.ndarray], first_group: int, width: int, height: int) -> tuple[RegionMask, ...]:
    """The masks resized to a frame of ``width`` x ``height`` (area-averaged,
    so a hard edge stays as soft as the pixels make it), each naming its
    style group (the run's groups, then one per region)."""
    import cv2

    return tuple(RegionMask(cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA), first_group + n)
                 for n, mask in enumerate(masks))
