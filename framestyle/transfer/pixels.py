"""Frames between numpy (HxWx3 uint8 RGB, or uint16 with --bit-depth 16) and torch (1x3xHxW float in [0, 1])."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 (or uint16) to 1x3xHxW float32 in [0, 1]."""
    if rgb.dtype == np.uint16:
        tensor = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).contiguous().div_(65535.0)
    else:
        tensor = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous().float().div_(255.0)
    return tensor.unsqueeze(0).to(device)


def to_rgb8(image: torch.Tensor) -> np.ndarray:
    """1x3xHxW in [0, 1] (clamped) to HxWx3 uint8, rounding to nearest."""
    array = image.detach()[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)


def to_rgb16(image: torch.Tensor) -> np.ndarray:
    """1x3xHxW in [0, 1] (clamped) to HxWx3 uint16, rounding to nearest."""
    array = image.detach()[0].float().clamp(0, 1).mul(65535).round().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array.astype(np.uint16))


def resize_tensor(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)
