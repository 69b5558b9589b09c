"""The losses of Gatys et al. (content, style) and total variation, as plugins."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from framestyle.hookspecs import hookimpl
from framestyle.transfer.losses import (
    ContentLoss,
    StyleLoss,
    TemporalLoss,
    TotalVariationLoss,
)
from framestyle.transfer.pixels import to_rgb8
from framestyle.transfer.warm import warped_previous
from framestyle.types import FrameJob, LossSpec


def build_content(job: FrameJob) -> ContentLoss:
    layer = job.settings.content_layer
    target = job.context.encode(job.content, [layer])[layer]
    return ContentLoss(layer, target)


def build_style(job: FrameJob) -> StyleLoss:
    """Style Grams are computed once per content size and reused for every
    frame. With ``--preserve-colors histogram`` the styles are recoloured to
    the first frame of each shot, so the targets change only at scene cuts."""
    layers = dict(job.settings.style_layers)
    _, _, height, width = job.content.shape
    cache = job.context.cache("losses")
    if job.settings.preserve_colors == "histogram":
        # One entry for the whole run, the current shot's: a folder of
        # images (each its own shot) must not keep every image's Grams.
        shape = (height, width, tuple(layers))
        held = cache.get("style-grams-shot")
        if job.new_shot or held is None or held[0] != shape:
            held = cache["style-grams-shot"] = (shape, blended_grams(job, layers, palette=to_rgb8(job.content)))
        return StyleLoss(layers, held[1])
    key = ("style-grams", height, width, tuple(layers))
    if key not in cache:
        cache[key] = blended_grams(job, layers)
    return StyleLoss(layers, cache[key])


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
    register(LossSpec("temporal", build_temporal, 200.0,
                      "videos: MSE to the flow-warped previous frame where the flow is reliable "
                      "(Ruder et al. 2016; --temporal-weight)"))
