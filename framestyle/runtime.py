"""What a run sets up once and every frame shares: device, network, styles, caches."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framestyle.errors import InputError, UsageError, did_you_mean
from framestyle.host import Hooks
from framestyle.images import fit_long_side, read_image, resize
from framestyle.motion import warp
from framestyle.settings import Settings
from framestyle.types import FrameJob
from framestyle.vgg import LAYER_INDEX, VGG19Encoder
from framestyle.weights import Weights, resolve_weights

log = logging.getLogger("framestyle")

# VGG-19 halves the image four times before relu5_1; below this short side the
# deep layers would have no pixels left, so smaller images are optimised enlarged.
MIN_SIDE = 32


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an absent device asked for
    by name is a usage error."""
    name = name.strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not mps_ok:
        raise UsageError(f"--device {name}: no MPS device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name}: unsupported; use auto, cpu, cuda or mps")
    return device


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 to 1x3xHxW float32 in [0, 1]."""
    tensor = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous().float().div_(255.0)
    return tensor.unsqueeze(0).to(device)


def to_rgb8(image: torch.Tensor) -> np.ndarray:
    """1x3xHxW in [0, 1] (clamped) to HxWx3 uint8, rounding to nearest."""
    array = image.detach()[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)


class Runtime:
    """Shared state of one run. ``cache`` holds targets that do not change
    between frames (style Grams per size); plugins may use it too, with keys
    that start with their own name."""

    def __init__(
        self,
        settings: Settings,
        hooks: Hooks,
        weights: Weights | None = None,
        styles: list[np.ndarray] | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.device = resolve_device(settings.device)
        self.styles = styles if styles is not None else [self._read_style(p) for p in settings.style]
        if not self.styles:
            raise UsageError("no style image: pass --style IMAGE")
        self.weights = weights or resolve_weights(settings.weights)
        self.encoder = VGG19Encoder(
            self.weights.state, self.weights.pad_rgb, deepest="pool5", pooling=settings.pooling
        ).to(self.device)
        self.cache: dict[Any, Any] = {}
        self.validate_layers()

    @staticmethod
    def _read_style(path: Path) -> np.ndarray:
        try:
            return read_image(Path(path))
        except InputError as exc:
            raise UsageError(f"style image {path}: {exc}") from None

    def validate_layers(self) -> None:
        for name in [self.settings.content_layer, *self.settings.style_layers]:
            if name not in LAYER_INDEX:
                raise UsageError(f"unknown VGG-19 layer {name!r}{did_you_mean(name, LAYER_INDEX)}")

    def encode(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for ``image`` (1x3xHxW in [0, 1])."""
        return self.encoder(image, layers)

    def style_images(self, height: int, width: int) -> list[torch.Tensor]:
        """The style images for a content of this size: each resized so its
        long side equals the content's, as tensors on the device."""
        key = ("style-images", height, width)
        if key not in self.cache:
            long_side = max(height, width)
            tensors = []
            for rgb in self.styles:
                h, w = rgb.shape[:2]
                scale = long_side / max(h, w)
                size = at_least(max(1, round(w * scale)), max(1, round(h * scale)))
                tensors.append(to_tensor(resize(rgb, *size), self.device))
            self.cache[key] = tensors
        return self.cache[key]

    def prepare_content(self, rgb: np.ndarray) -> tuple[np.ndarray, torch.Tensor, tuple[int, int]]:
        """The frame at the size it is optimised at (uint8, for optical flow),
        the same as the tensor to optimise, and the (width, height) the result
        must be written at: the frame brought down to ``--size``. Images too
        small for VGG-19's pooling are optimised enlarged."""
        height, width = rgb.shape[:2]
        out_size = fit_long_side(width, height, self.settings.size)
        working = resize(rgb, *at_least(*out_size))
        return working, to_tensor(working, self.device), out_size

    def finish(self, image: torch.Tensor, out_size: tuple[int, int]) -> np.ndarray:
        """The optimised tensor as the uint8 frame to write, at ``out_size``."""
        return resize(to_rgb8(image), *out_size)


def at_least(width: int, height: int, side: int = MIN_SIDE) -> tuple[int, int]:
    """(width, height) enlarged, keeping the aspect, so the short side is at least ``side``."""
    scale = max(1.0, side / min(width, height))
    return round(width * scale), round(height * scale)


def warped_previous(job: FrameJob) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous stylised frame warped to this one by the flow of the
    original frames, and the mask (1x1xHxW) of pixels the flow explains."""
    if "warped_previous" not in job.scratch:
        assert job.previous is not None and job.motion is not None
        previous = to_rgb8(job.previous)
        warped = to_tensor(warp(previous, job.motion.flow), job.content.device)
        mask = torch.from_numpy(job.motion.mask)[None, None].to(job.content.device)
        job.scratch["warped_previous"] = (warped, mask)
    return job.scratch["warped_previous"]
