"""The losses of Gatys et al. (content, style), Risser et al.'s histogram loss
and total variation, as plugins."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from framestyle.hookspecs import hookimpl
from framestyle.transfer.losses import (
    ContentLoss,
    HistogramLoss,
    StyleLoss,
    TemporalLoss,
    TotalVariationLoss,
    blend_quantiles,
    quantiles,
)
from framestyle.transfer.pixels import to_rgb8
from framestyle.transfer.warm import warped_previous
from framestyle.types import FrameJob, LossSpec


def build_content(job: FrameJob) -> ContentLoss:
    layer = job.settings.content_layer
    target = job.context.encode(job.content, [layer])[layer]
    return ContentLoss(layer, target)


def build_style(job: FrameJob) -> StyleLoss:
    layers = dict(job.settings.style_layers)
    return StyleLoss(layers, style_targets(job, "grams", layers, blended_grams))


def build_histogram(job: FrameJob) -> HistogramLoss:
    layers = dict(job.settings.style_layers)
    return HistogramLoss(layers, style_targets(job, "quantiles", layers, blended_quantiles))


def style_targets(job: FrameJob, kind: str, layers: dict[str, float],
                  compute: Callable[[FrameJob, dict[str, float], np.ndarray | None], dict[str, torch.Tensor]],
                  ) -> dict[str, torch.Tensor]:
    """A style loss's targets, computed once per content size and reused for
    every frame. With ``--preserve-colors histogram`` the styles are
    recoloured to the first frame of each shot, so the targets change only
    at scene cuts."""
    _, _, height, width = job.content.shape
    cache = job.context.cache("losses")
    if job.settings.preserve_colors == "histogram":
        # One entry for the whole run, the current shot's: a folder of
        # images (each its own shot) must not keep every image's targets.
        shape = (height, width, tuple(layers))
        held = cache.get(f"style-{kind}-shot")
        if job.new_shot or held is None or held[0] != shape:
            held = cache[f"style-{kind}-shot"] = (shape, compute(job, layers, to_rgb8(job.content)))
        return held[1]
    key = (f"style-{kind}", height, width, tuple(layers))
    if key not in cache:
        cache[key] = compute(job, layers, None)
    return cache[key]


def blended_grams(job: FrameJob, layers: dict[str, float],
                  palette: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Σ_i w_i · (mean Gram of style group i), w from ``--style-weights``:
    the images of one group (a style folder) count equally."""
    _, _, height, width = job.content.shape
    groups = job.context.style_groups(height, width, palette)
    blended: dict[str, torch.Tensor] = {}
    for weight, group in zip(job.context.style_weights, groups, strict=True):
        for style in group:
            for name, style_gram in job.context.grams(style, layers).items():
                term = style_gram * (weight / len(group))
                blended[name] = blended[name] + term if name in blended else term
    return blended


def blended_quantiles(job: FrameJob, layers: dict[str, float],
                      palette: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Each style layer's per-channel histogram (as quantiles), blended as
    the Grams are: the images of a group equally, the groups by ``--style-weights``."""
    _, _, height, width = job.content.shape
    groups = job.context.style_groups(height, width, palette)
    parts: dict[str, list[tuple[float, torch.Tensor]]] = {name: [] for name in layers}
    for weight, group in zip(job.context.style_weights, groups, strict=True):
        for style in group:
            with torch.no_grad():
                features = job.context.encode(style, list(layers))
            for name in layers:
                parts[name].append((weight / len(group), quantiles(features[name])))
    return {name: blend_quantiles(layer_parts) for name, layer_parts in parts.items()}


def build_tv(job: FrameJob) -> TotalVariationLoss:
    return TotalVariationLoss()


def build_temporal(job: FrameJob) -> TemporalLoss | None:
    """Only for a warm video frame: there is no previous frame to agree with otherwise."""
    if not job.warm:
        return None
    return TemporalLoss(*warped_previous(job))


@hookimpl
def register_losses(register: Callable[[LossSpec], None]) -> None:
    register(LossSpec("content", build_content, 1.0,
                      "relative MSE of the content layer's activations (--content-layer)"))
    register(LossSpec("style", build_style, 5.0,
                      "relative MSE of Gram matrices over the style layers (--style-layers)"))
    register(LossSpec("tv", build_tv, 0.0, "total variation: mean squared neighbour difference"))
    register(LossSpec("histogram", build_histogram, 0.0,
                      "each style layer's activation histograms matched to the style's, channel by channel "
                      "(Risser et al. 2017; --loss histogram=W)"))
    register(LossSpec("temporal", build_temporal, 200.0,
                      "videos: MSE to the flow-warped previous frame where the flow is reliable "
                      "(Ruder et al. 2016; --temporal-weight)"))
