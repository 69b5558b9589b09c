"""Frames between numpy (HxWx3 uint8 RGB) and torch (1x3xHxW float in [0, 1])."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 to 1x3xHxW float32 in [0, 1]."""
    tensor = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous().float().div_(255.0)
    return tensor.unsqueeze(0).to(device)


def to_rgb8(image: torch.Tensor) -> np.ndarray:
    """1x3xHxW in [0, 1] (clamped) to HxWx3 uint8, rounding to nearest."""
    array = image.detach()[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)


def resize_tensor(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)
