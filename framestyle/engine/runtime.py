"""What a run sets up once and every frame shares: device, network, styles, caches."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import torch

from framestyle.engine.device import autocast_dtype, resolve_device
from framestyle.engine.regions import open_mask, region_styles
from framestyle.engine.schedule import schedule_styles
from framestyle.engine.styles import MIN_STYLE_SIDE, blend_weights, read_style
from framestyle.errors import UsageError
from framestyle.media.images import fit_long_side, resize
from framestyle.settings import Settings, parse_region
from framestyle.transfer.colors import keep_luminance, match_colors
from framestyle.transfer.losses import gram
from framestyle.transfer.memory import forward_tiling, free_memory, pass_bytes_per_pixel
from framestyle.transfer.pixels import to_rgb8, to_rgb16, to_tensor
from framestyle.transfer.tiles import Tiling, inside_tiles, tiled_features, tiled_grams
from framestyle.transfer.vgg import MIN_SIDE, VGG19Encoder
from framestyle.transfer.weights import Weights, resolve_weights
from framestyle.transfer.winograd import use_winograd

log = logging.getLogger("framestyle")


def encode_in(encoder: torch.nn.Module, image: torch.Tensor, layers: Iterable[str],
              dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """``encoder``'s activations of ``layers``, computed under autocast to
    ``dtype`` (None: plain float32) and returned in the dtype the network
    produced them in: the losses sum in float32 themselves, and a float32
    copy of every activation would cost a pass over memory per layer."""
    if dtype is None:
        return encoder(image, layers)
    with torch.autocast(image.device.type, dtype=dtype):
        return encoder(image, layers)


def compiled(encoder: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``encoder`` through torch.compile (inductor). On the CPU inductor
    builds C++: without a compiler that is a usage error now rather than a
    failure at the first frame."""
    if device.type == "cpu" and not any(shutil.which(name) for name in ("c++", "g++", "clang++", "cl")):
        raise UsageError("--compile: torch.compile needs a C++ compiler on the CPU, and none was found")
    return cast(torch.nn.Module, torch.compile(encoder))  # it wraps the module, and forwards like it


class Runtime:
    """Shared state of one run in one process. ``cache`` holds the style
    images per size; ``plugin_caches`` a dict per plugin for targets that do
    not change between frames (:meth:`FrameContext.cache`)."""

    def __init__(
        self,
        settings: Settings,
        weights: Weights | None = None,
        styles: list[list[np.ndarray]] | None = None,
    ) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        # One group of images per --style, then per style of each --style-at
        # (engine.schedule), then per --region; a folder's images form one group.
        self.styles = styles if styles is not None else [read_style(path) for path in schedule_styles(settings)]
        if not self.styles or (styles is None and not settings.style):
            raise UsageError("no style image: pass --style IMAGE")
        self.region_group = len(self.styles)  # the first region's group
        self.styles += [read_style(path) for path in region_styles(settings.regions)]
        self.masks = [open_mask(parse_region(text)[0]) for text in settings.regions]
        base = blend_weights(settings.style_weights, len(settings.style) if styles is None else len(styles))
        self.style_weights = base + [0.0] * (len(self.styles) - len(base))  # a frame's own: FrameJob.style_weights
        self.weights = weights or resolve_weights(settings.weights)
        self.encoder: torch.nn.Module = VGG19Encoder(
            self.weights.state, self.weights.pad_rgb, deepest="pool5", pooling=settings.pooling,
            padding=settings.padding
        ).to(self.device)
        self.autocast = autocast_dtype(settings.precision, self.device)
        if self.device.type == "cpu" and self.autocast is None and not settings.compile:
            use_winograd(self.encoder)  # docs/performance/speed.md: Winograd
        if settings.compile:
            self.encoder = compiled(self.encoder, self.device)
        self.cache: dict[Any, Any] = {}
        self.plugin_caches: dict[str, dict[Any, Any]] = {}

    def encode(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for ``image`` (Bx3xHxW in [0, 1]), in the
        dtype the network ran in (bfloat16 under ``--precision bf16``); Grams
        and losses are summed in float32 (:func:`~framestyle.transfer.losses.gram`).
        A target (no graph) too large for one pass is stitched from tiles."""
        layers = list(layers)
        graph = image.requires_grad and torch.is_grad_enabled()
        tiling = None if graph or inside_tiles() else self.forward_tiling(image, layers)
        if tiling is not None:
            return tiled_features(self.encode_whole, image, layers, tiling)
        return self.encode_whole(image, layers)

    def encode_whole(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        return encode_in(self.encoder, image, layers, self.autocast)

    def grams(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Gram matrices (float32, mean over positions) of ``image``'s
        activations, accumulated over tiles where one pass would not fit."""
        layers = list(layers)
        tiling = self.forward_tiling(image, layers)
        if tiling is not None:
            return tiled_grams(self.encode_whole, image, layers, tiling)
        with torch.no_grad():
            return {name: gram(features) for name, features in self.encode_whole(image, layers).items()}

    def forward_tiling(self, image: torch.Tensor, layers: list[str]) -> Tiling | None:
        if not layers:
            return None
        height, width = image.shape[-2:]
        return forward_tiling(height, width, layers, self.settings.tile, self.memory_budget())

    def memory_budget(self) -> int:
        """What one image's optimisation may use now (``--max-memory``, free memory)."""
        return free_memory(self.device, self.settings.max_memory)

    def auto_batch_size(self, limit: int = 16) -> int:
        """Frames to optimise together. On CUDA as many ``--size`` square
        frames as 70% of the free memory holds, measured from one frame's
        forward and backward pass. On the CPU 4 up to 512 px: the coarse
        levels of images of one size share VGG-19 passes, which pays there
        (docs/performance/speed.md: batches), while full-size passes run one image
        at a time anyway; 1 on MPS (not measured)."""
        if self.device.type == "cpu":
            return 4 if self.settings.size <= 512 else 1
        if self.device.type != "cuda":
            return 1
        size = self.settings.size
        if size * size * pass_bytes_per_pixel(self.autocast) > self.memory_budget() // 2:
            return 1  # a large frame: one at a time, in tiles if need be (the probe itself would not fit)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        image = torch.rand(1, 3, size, size, device=self.device, requires_grad=True)
        features = self.encode(image, [self.settings.content_layer, *self.settings.style_layers])
        torch.stack([value.float().square().mean() for value in features.values()]).sum().backward()
        per_frame = max(1, torch.cuda.max_memory_allocated(self.device) - before)
        del image, features
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(1, min(limit, int(0.7 * free / per_frame)))

    def style_images(self, height: int, width: int) -> list[torch.Tensor]:
        """Every style image for a content of this size (see :meth:`style_groups`)."""
        return [image for group in self.style_groups(height, width) for image in group]

    def style_groups(self, height: int, width: int, palette: np.ndarray | None = None) -> list[list[torch.Tensor]]:
        """The style images for a content of this size, group by group, as
        tensors on the device: each resized so its long side is the content's
        times ``--style-scale``; with a ``palette`` (histogram colour
        preservation), recoloured to its colours first."""
        key = ("style-images", height, width)
        if palette is None and key in self.cache:
            return self.cache[key]
        long_side = max(height, width) * self.settings.style_scale
        groups = []
        for group in self.styles:
            tensors = []
            for rgb in group:
                h, w = rgb.shape[:2]
                scale = long_side / max(h, w)
                size = at_least(max(1, round(w * scale)), max(1, round(h * scale)))
                resized = resize(rgb, *size)
                if palette is not None:
                    resized = match_colors(resized, palette)
                tensors.append(to_tensor(resized, self.device))
            groups.append(tensors)
        if palette is None:
            self.cache[key] = groups
        return groups

    def warn_if_style_too_small(self, width: int, height: int) -> None:
        """Say once per frame size when ``--style-scale`` shrinks a style so
        far that VGG-19's deeper style layers (``relu5_1`` sees one position
        per 16 pixels) see only a few positions of it: its strokes blur away
        and what is left is colour and coarse patches, not finer strokes."""
        if self.settings.style_scale >= 1 or ("style-size-checked", width, height) in self.cache:
            return
        self.cache["style-size-checked", width, height] = True
        long_side = max(width, height) * self.settings.style_scale
        short = min(min(rgb.shape[:2]) * long_side / max(rgb.shape[:2]) for group in self.styles for rgb in group)
        if short < MIN_STYLE_SIDE:
            log.warning("--style-scale %g leaves the style %d px on its short side for %dx%d frames, too small "
                        "for VGG-19 to see its texture (under %d px): expect colour and coarse patches rather "
                        "than finer strokes; raise --size or --style-scale", self.settings.style_scale,
                        round(short), width, height, MIN_STYLE_SIDE)

    def prepare_content(self, rgb: np.ndarray) -> tuple[np.ndarray, torch.Tensor, tuple[int, int]]:
        """The frame at the size it is optimised at (uint8, for optical flow),
        the same as the tensor to optimise, and the (width, height) the result
        must be written at (see :meth:`working_frame`)."""
        working, out_size = self.working_frame(rgb)
        return working, to_tensor(working, self.device), out_size

    def working_frame(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The frame at the size it is optimised at, and the (width, height)
        the result is written at: the frame brought down to ``--size``.
        Images too small for VGG-19's pooling are optimised enlarged."""
        height, width = rgb.shape[:2]
        working, out_size = self.sizes(width, height)
        self.warn_if_style_too_small(*working)
        return resize(rgb, *working), out_size

    def sizes(self, width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """For a frame of ``width`` x ``height``: the (width, height) it is
        optimised at and the one its result is written at."""
        out_size = fit_long_side(width, height, self.settings.size)
        return at_least(*out_size), out_size

    def finish(self, image: torch.Tensor, content: torch.Tensor, out_size: tuple[int, int]) -> np.ndarray:
        """The optimised tensor as the frame to write (uint8, or uint16 with
        ``--bit-depth 16``), at ``out_size``;
        with ``--preserve-colors luminance``, in the content's colours; with
        ``--color-only``, in the content's luminance."""
        if self.settings.preserve_colors == "luminance":
            image = keep_luminance(image, content)
        elif self.settings.color_only:
            image = keep_luminance(content, image)
        return resize(to_rgb16(image) if self.settings.bit_depth == 16 else to_rgb8(image), *out_size)


def at_least(width: int, height: int, side: int = MIN_SIDE) -> tuple[int, int]:
    """(width, height) enlarged, keeping the aspect, so the short side is at least ``side``."""
    scale = max(1.0, side / min(width, height))
    return round(width * scale), round(height * scale)
