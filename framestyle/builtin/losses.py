"""The losses of Gatys et al. (content, style) and total variation, as plugins."""

from __future__ import annotations

from collections.abc import Callable

from framestyle.hookspecs import hookimpl
from framestyle.losses import ContentLoss, StyleLoss, TemporalLoss, TotalVariationLoss, gram
from framestyle.runtime import warped_previous
from framestyle.types import FrameJob, LossSpec


def build_content(job: FrameJob) -> ContentLoss:
    layer = job.settings.content_layer
    target = job.runtime.encode(job.content, [layer])[layer]
    return ContentLoss(layer, target)


def build_style(job: FrameJob) -> StyleLoss:
    """Style Grams are computed once per content size and reused for every
    frame; several style images blend with equal weights."""
    layers = dict(job.settings.style_layers)
    _, _, height, width = job.content.shape
    key = ("style-grams", height, width, tuple(layers))
    cache = job.runtime.cache
    if key not in cache:
        styles = job.runtime.style_images(height, width)
        grams = [
            {name: gram(f) for name, f in job.runtime.encode(style, layers).items()} for style in styles
        ]
        cache[key] = {name: sum(g[name] for g in grams) / len(grams) for name in layers}
    return StyleLoss(layers, cache[key])


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
