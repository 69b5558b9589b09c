"""Styles by region (``--region MASK=STYLE``): each style's Gram matrices
taken over its mask's pixels only (guided Gram matrices, Gatys et al. 2017,
"Controlling Perceptual Factors in Neural Style Transfer").

A mask is a black-and-white image of any size, resized to the frame; grey
is a partial weight, so a soft edge blends the two styles there. The
pixels no mask covers take ``--style`` (or stay the content with
``--region-rest content``). For a video a mask may move: a folder of
masks, numbered files (``masks/m_%04d.png``) or a mask video give each
frame its own, by position; a single image is every frame's, or, with
``--region-follow``, the first frame's, carried through the first shot by
the flow (:class:`FollowedMask`). The loss is
:class:`~framestyle.transfer.losses.GuidedStyleLoss`, exactly tileable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from framestyle.errors import InputError, UsageError
from framestyle.media.images import IMAGE_EXTENSIONS, read_image, resize_mask
from framestyle.media.motion import Motion
from framestyle.media.sequence import is_sequence, numbered_files
from framestyle.media.video import VIDEO_EXTENSIONS, VideoSource
from framestyle.settings import parse_region
from framestyle.types import RegionMask

log = logging.getLogger("framestyle")
said_cut: set[tuple[Path, Path]] = set()  # (video, mask): the cut is said once, not by every segment

def region_styles(settings_regions: list[str]) -> list[Path]:
    return [parse_region(text)[1] for text in settings_regions]


class StillMask:
    """One mask for every frame."""

    def __init__(self, path: Path) -> None:
        self.path, self.mask = path, read_mask(path)

    def at(self, index: int) -> np.ndarray:
        return self.mask


class MaskFiles:
    """A mask per frame: the images of a folder (in natural order) or of a numbered pattern."""

    def __init__(self, path: Path) -> None:
        from framestyle.engine.planning.inputs import walk  # (the planning package imports the runtime)

        if is_sequence(path):
            self.files = [file for _, file in numbered_files(path)]
        else:
            self.files = [file for file, _ in walk(path, exclude=None) if file.suffix.lower() in IMAGE_EXTENSIONS]
        if not self.files:
            raise UsageError(f"--region mask {path}: no mask images there")
        self.path = path

    def at(self, index: int) -> np.ndarray:
        if index >= len(self.files):
            raise InputError(f"--region mask {self.path}: {len(self.files)} masks, none for frame {index + 1}")
        return read_mask(self.files[index])


class MaskVideo:
    """A mask per frame from a video's frames, read in order (sought again to go back)."""

    def __init__(self, path: Path) -> None:
        self.path, self.source = path, VideoSource(path)
        self.frames = self.source.frames_from(0)
        self.next = 0

    def at(self, index: int) -> np.ndarray:
        if index != self.next:  # a segment's first frame, or a frame built again
            self.source.close()
            self.source = VideoSource(self.path)
            self.frames = self.source.frames_from(index)
        found = next(self.frames, None)
        if found is None:
            raise InputError(f"--region mask {self.path}: the mask video ends before frame {index + 1}")
        self.next = index + 1
        return gray(found[1])


class FollowedMask:
    """One mask drawn on a video's first frame, moving with the picture
    through the first shot (``--region-follow``). Each frame keeps, per
    pixel, where it was in the first frame (the flows composed), and the
    mask is sampled there once: a chain of warps of the mask itself would
    blur its edge a little more every frame. From a cut on, the flow says
    nothing about where the drawn things went: the mask stays where it was.

    The flows are the run's own, from frame to frame at the working size:
    the chain's where it has them, and where it does not (a segment's first
    frame, the first frame a resumed run makes) computed again from the
    first frame by ``frames`` and ``motion``, alike, so that every split of a
    video gives the same masks."""

    def __init__(self, mask: StillMask, source: Path, frames: Callable[[], Iterator[np.ndarray]],
                 motion: Callable[[np.ndarray, np.ndarray], Motion]) -> None:
        self.drawn, self.path, self.source = mask.mask, mask.path, source
        self.frames, self.motion = frames, motion
        self.next = 0  # the frame the next carry reaches
        self.coords: np.ndarray | None = None  # HxWx2: where each pixel of frame next-1 was in the first
        self.cut_at: int | None = None
        self.sized: tuple[np.ndarray, np.ndarray] | None = None  # (pixel grid, drawn mask) at the working size

    def at(self, index: int, width: int, height: int, motion: Motion | None) -> np.ndarray:
        """The mask of frame ``index`` at ``width`` x ``height`` (the working
        size); ``motion`` the frame's from the one before, where known."""
        if index != self.next - 1:  # (a frame built again: as before)
            if index == self.next and (index == 0 or motion is not None):
                self.carry(width, height, motion)
            else:
                self.replay(index, width, height)
        import cv2

        assert self.coords is not None
        drawn = self.at_size(width, height)[1]
        return cv2.remap(drawn, self.coords[..., 0], self.coords[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def at_size(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """The pixel grid and the drawn mask at the working size, made once."""
        if self.sized is None or self.sized[1].shape != (height, width):
            grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
            self.sized = grid, resize_mask(self.drawn, width, height)
        return self.sized

    def carry(self, width: int, height: int, motion: Motion | None) -> None:
        import cv2

        grid = self.at_size(width, height)[0]
        if self.coords is None or self.next == 0:
            self.coords = grid
        elif motion is not None and motion.cut and self.cut_at is None:
            self.cut_at = self.next
            if (self.source, self.path) not in said_cut:
                said_cut.add((self.source, self.path))
                log.warning("%s: the --region mask %s followed the first shot; from frame %d (a cut) on it stays "
                            "where it was (give a mask per frame for later shots)", self.source, self.path,
                            self.next + 1)
        elif motion is not None and self.cut_at is None:
            there = grid + motion.flow  # each pixel's place in the frame before
            self.coords = cv2.remap(self.coords, there[..., 0], there[..., 1], cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        self.next += 1

    def replay(self, index: int, width: int, height: int) -> None:
        """Carry the mask from the first frame to frame ``index`` again."""
        self.next, self.coords, last = 0, None, None
        for working in self.frames():
            self.carry(width, height, None if last is None else self.motion(last, working))
            if self.next > index:
                return
            last = working
        raise InputError(f"{self.source}: the video ends before frame {index + 1}")


def open_mask(path: Path) -> StillMask | MaskFiles | MaskVideo:
    """The masks of ``MASK``: a folder, numbered files or a video move; an image stands still."""
    if path.is_dir() or is_sequence(path):
        return MaskFiles(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        try:
            return MaskVideo(path)
        except InputError as error:
            raise UsageError(f"--region mask {path}: {error}") from None
    return StillMask(path)


def gray(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 as HxW float32 in [0, 1], as Pillow's L mode weighs the channels."""
    weights = np.array([299, 587, 114], np.float32) / 1000
    return (rgb.astype(np.float32) @ weights) / 255.0


def read_mask(path: Path) -> np.ndarray:
    """A mask as HxW float32 in [0, 1] (white: inside)."""
    try:
        return gray(read_image(path))
    except InputError as error:
        raise UsageError(f"--region mask {path}: {error}") from None


def masks_at(masks: list[np.ndarray], first_group: int, width: int, height: int) -> tuple[RegionMask, ...]:
    """The masks resized to a frame of ``width`` x ``height``, each naming
    its style group (the run's groups, then one per region)."""
    return tuple(RegionMask(resize_mask(mask, width, height), first_group + n) for n, mask in enumerate(masks))
