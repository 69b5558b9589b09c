"""How much memory one image's optimisation needs, and the plan that fits
it in what is free: whole or in tiles (:mod:`framestyle.transfer.tiles`),
and how many pairs of L-BFGS history (or Adam, whose state is two images).

The figures are measured on the CPU, from the peak resident memory of whole
runs at 0.25, 1 and 2 megapixels (``benchmarks/tiled_memory.py``;
docs/guide/large-images.md): a run needs ~2.3 KB a pixel in fp32 and ~1.85 KB in bf16,
of which the image-sized tensors below are ~0.15 KB; the rest is VGG-19's
forward and backward, here with a tenth more for safety.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from framestyle.transfer.tiles import Tiling

PASS_BYTES_PER_PIXEL = 2_600  # forward and backward to relu5_1, float32 (measured 2,450 on the CPU with Winograd)
LOW_PRECISION_PASS_BYTES_PER_PIXEL = 1_900  # the same under bf16 (or fp16) autocast
FORWARD_BYTES_PER_PIXEL = 800  # forward without a graph, the activations asked for kept
PIXEL_BYTES = 12  # one float32 RGB pixel
# Image-sized float32 tensors a frame holds besides L-BFGS's history: the
# pixels, their gradient, the best image, the start, the content, and the
# optimizer's direction, previous and flattened gradients and their copies.
FRAME_IMAGES = 10
TARGET_BYTES_PER_PIXEL = 32  # the content target at relu4_2: 512 channels a 8x8 cell, float32
HISTORY = 100  # L-BFGS pairs when memory allows (Gatys et al.'s setting in most ports)
MIN_HISTORY = 5  # fewer pairs than this, and Adam does better for the same memory
MIN_WHOLE_HISTORY = 20  # tile rather than keep fewer pairs than this for an untiled pass
MIN_TILE = 256
HEADROOM = 0.8  # of the memory the system says is free: the rest is for everyone else


@dataclass(frozen=True)
class MemoryPlan:
    """How one image of ``height`` x ``width`` is optimised: whole or in
    ``tiling``'s tiles, with ``history`` pairs of L-BFGS history (0: Adam)."""

    height: int
    width: int
    tiling: Tiling | None
    history: int
    whole_bytes: int  # what an untiled pass needs
    budget: int  # what was free for it

    @property
    def tiles(self) -> int:
        """How many tiles (0: whole)."""
        return self.tiling.count(self.height, self.width) if self.tiling else 0

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.tiling is None:
            return f"{size} whole (~{gib(self.whole_bytes)} for a pass, {gib(self.budget)} free)"
        return (f"{size} in {self.tiles} tiles of {self.tiling.side} px (halo {self.tiling.halo}): whole it would "
                f"need ~{gib(self.whole_bytes)} for a pass, {gib(self.budget)} is free")


def gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"


def free_memory(device: torch.device, cap: int | None = None) -> int:
    """What an image's optimisation may use now: on CUDA the device's free
    memory, on the CPU what the system says is available (MemAvailable),
    with headroom; at most ``cap`` less what this process holds already."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        held = torch.cuda.memory_allocated(device)
    else:
        free, held = system_available(), resident()
    free = int(free * HEADROOM)
    return free if cap is None else max(0, min(free, cap - held))


def system_available() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**34  # unknown: assume 16 GiB


def resident() -> int:
    """This process's resident memory (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def frame_bytes(pixels: int) -> int:
    """A frame's memory besides the passes and the history."""
    return pixels * (FRAME_IMAGES * PIXEL_BYTES + TARGET_BYTES_PER_PIXEL)


def pair_bytes(pixels: int) -> int:
    return 2 * pixels * PIXEL_BYTES


def pass_bytes_per_pixel(dtype: torch.dtype | None) -> int:
    """What a forward and backward pass keeps per pixel with VGG-19 in ``dtype`` (None: float32)."""
    return PASS_BYTES_PER_PIXEL if dtype is None or dtype == torch.float32 else LOW_PRECISION_PASS_BYTES_PER_PIXEL


def plan_memory(height: int, width: int, layers: list[str], tile: str, budget: int,
                dtype: torch.dtype | None = None) -> MemoryPlan:
    """The plan for an image under ``--tile`` (``auto``, ``off`` or a side
    in pixels) with ``budget`` bytes free. ``auto`` tiles only when the whole
    pass and :data:`MIN_WHOLE_HISTORY` pairs would not fit, in the largest
    tiles that leave room for history; the history takes what is left, up
    to :data:`HISTORY` pairs (fewer than :data:`MIN_HISTORY`: Adam)."""
    pixels, per_pixel = height * width, pass_bytes_per_pixel(dtype)
    whole = pixels * per_pixel
    rest = budget - frame_bytes(pixels)
    tiling = asked_tiling(height, width, layers, tile)
    if tile == "auto" and whole + MIN_WHOLE_HISTORY * pair_bytes(pixels) > rest:
        tiling = largest_tiling(height, width, layers, rest // 2, per_pixel)
    pass_bytes = whole if tiling is None else tiling.carried() ** 2 * per_pixel
    history = min(HISTORY, max(0, rest - pass_bytes) // pair_bytes(pixels))
    return MemoryPlan(height, width, tiling, history if history >= MIN_HISTORY else 0, whole, budget)


def largest_tiling(height: int, width: int, layers: list[str], budget: int, per_pixel: int) -> Tiling:
    """The largest tiles whose pass fits ``budget`` (the smallest sensible
    ones if none does: the run then fails for want of memory, not of tiles)."""
    side = round_down(max(height, width), MIN_TILE)
    while side > MIN_TILE:
        tiling = Tiling.for_layers(side, layers)
        if tiling.carried() ** 2 * per_pixel <= budget:
            return tiling
        side -= MIN_TILE
    return Tiling.for_layers(MIN_TILE, layers)


def asked_tiling(height: int, width: int, layers: list[str], tile: str) -> Tiling | None:
    """``--tile N``'s tiles, or None where one tile holds the whole image
    (or ``tile`` is ``auto`` or ``off``)."""
    if not tile.isdigit():
        return None
    tiling = Tiling.for_layers(int(tile), layers)
    return tiling if tiling.count(height, width) > 1 else None


def round_down(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def forward_tiling(height: int, width: int, layers: list[str], tile: str, budget: int) -> Tiling | None:
    """Tiles for a pass without a graph (targets: the content's activations,
    the style's Grams), or None to run it whole."""
    if tile != "auto" or height * width * FORWARD_BYTES_PER_PIXEL <= budget // 2:
        return asked_tiling(height, width, layers, tile)
    return largest_tiling(height, width, layers, budget // 2, FORWARD_BYTES_PER_PIXEL)
