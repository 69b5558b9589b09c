"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural
Artistic Style Transfer"), two ways:

* ``luminance``: optimise as usual, then keep the result's luminance and take
  its chrominance from the content (YCbCr, BT.601). The colours are exactly
  the content's, frame by frame, so a video's colours cannot flicker more
  than its source's.
* ``histogram``: recolour the style image first so its colours have the
  content's mean and covariance, then optimise. Brush strokes keep some
  colour variation; for a video the mapping is computed once per shot, so it
  does not change from frame to frame.

And the other way round, ``--color-only``: optimise as usual, then keep the
content's luminance and take the result's chrominance; the photo's detail
and light stay exactly, the palette is the style's.
"""

from __future__ import annotations

import numpy as np
import torch

from framestyle.settings import COLOR_MODES as MODES  # noqa: F401  (re-exported)

# BT.601 full range, as JPEG uses.
_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                          [-0.168736, -0.331264, 0.5],
                          [0.5, -0.418688, -0.081312]])
_TO_RGB = torch.linalg.inv(_TO_YCBCR)


def to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW RGB in [0, 1] to Y, Cb, Cr (Cb and Cr centred on 0)."""
    return torch.einsum("ij,njhw->nihw", _TO_YCBCR.to(rgb), rgb)


def to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _TO_RGB.to(ycbcr), ycbcr)


def keep_luminance(styled: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance of ``styled`` with the chrominance of ``content``."""
    ycbcr = to_ycbcr(content).clone()
    ycbcr[:, :1] = to_ycbcr(styled)[:, :1]
    return to_rgb(ycbcr).clamp(0, 1)


def match_colors(source: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``source`` (HxWx3 uint8) recoloured by the affine map that gives its
    pixels the mean and covariance of ``palette``'s: x -> A(x - mu_s) + mu_p
    with A = C_p^1/2 C_s^-1/2 (symmetric square roots, which change hues
    least)."""
    src = source.reshape(-1, 3).astype(np.float64) / 255.0
    pal = palette.reshape(-1, 3).astype(np.float64) / 255.0
    mu_s, mu_p = src.mean(0), pal.mean(0)
    cov_s = np.cov(src, rowvar=False) + 1e-5 * np.eye(3)
    cov_p = np.cov(pal, rowvar=False) + 1e-5 * np.eye(3)
    transform = sqrtm(cov_p) @ np.linalg.inv(sqrtm(cov_s))
    out = (src - mu_s) @ transform.T + mu_p
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(source.shape)


def sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
