"""The losses of Gatys et al. (content, style), Risser et al.'s histogram loss
and total variation, as plugins."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from framestyle.hookspecs import hookimpl
from framestyle.media.images import resize_mask
from framestyle.transfer.losses import (
    ContentLoss,
    GuidedStyleLoss,
    HistogramLoss,
    StyleLoss,
    TemporalLoss,
    TotalVariationLoss,
    quantiles,
    weighted_mean,
)
from framestyle.transfer.pixels import to_rgb8
from framestyle.transfer.warm import warped_previous
from framestyle.types import FrameJob, LossSpec


def build_content(job: FrameJob) -> ContentLoss:
    layer = job.settings.content_layer
    target = job.context.encode(job.content, [layer])[layer]
    return ContentLoss(layer, target)


def build_style(job: FrameJob) -> StyleLoss | GuidedStyleLoss | None:
    """Gatys et al.'s style loss; with ``--region``, each region's style over
    its mask and the run's style over the rest (none there with
    ``--region-rest content``)."""
    layers = dict(job.settings.style_layers)
    groups = style_targets(job, "grams", layers, group_grams)
    if not job.regions:
        return StyleLoss(layers, blend(job, groups))
    height, width = job.content.shape[-2:]
    masks = [resize_mask(region.mask, width, height) for region in job.regions]
    guided = [(mask, groups[region.group]) for mask, region in zip(masks, job.regions, strict=True)]
    if job.settings.region_rest == "style":
        guided.append((rest_of(masks), blend(job, groups)))
    guided = [(mask, targets) for mask, targets in guided if mask.max() > 0]
    if not guided:
        return None
    return GuidedStyleLoss(layers, [(torch.from_numpy(mask).to(job.content.device), targets)
                                    for mask, targets in guided])


def rest_of(masks: list[np.ndarray]) -> np.ndarray:
    """Where no region is: what the masks leave uncovered (overlaps count once)."""
    return np.clip(1.0 - np.sum(masks, axis=0), 0.0, 1.0).astype(np.float32)



# Risser et al. match histograms at these two: the most of the effect for a
# third of the sorting that all five style layers would cost.
HISTOGRAM_LAYERS = ("relu1_1", "relu4_1")


def build_histogram(job: FrameJob) -> HistogramLoss:
    layers = {name: weight for name, weight in job.settings.style_layers.items() if name in HISTOGRAM_LAYERS}
    layers = layers or dict(job.settings.style_layers)  # style layers of one's own: all of them
    return HistogramLoss(layers, blend(job, style_targets(job, "quantiles", layers, group_quantiles)))


Targets = list[dict[str, torch.Tensor]]  # per style group, per layer


def style_targets(job: FrameJob, kind: str, layers: dict[str, float],
                  compute: Callable[[FrameJob, dict[str, float], np.ndarray | None], Targets]) -> Targets:
    """Each style group's targets, computed once per content size and reused
    for every frame. With ``--preserve-colors histogram`` the styles are
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


def blend(job: FrameJob, groups: Targets) -> dict[str, torch.Tensor]:
    """The groups' targets blended by this frame's style weights (``--style-weights``,
    or a ``--style-at`` schedule's): the groups a frame gives no weight are left out."""
    weights = list(job.style_weights or job.context.style_weights)
    weights += [0.0] * (len(groups) - len(weights))  # --region's groups: their own masks' (build_style)
    return {name: weighted_mean([(weight, group[name]) for weight, group in zip(weights, groups, strict=True)
                                 if weight > 0])
            for name in groups[0]}


def group_grams(job: FrameJob, layers: dict[str, float], palette: np.ndarray | None = None) -> Targets:
    """Per style group, the mean of its images' Gram matrices (a style folder's count equally)."""
    return group_means(job, palette, lambda style: job.context.grams(style, layers))


def group_quantiles(job: FrameJob, layers: dict[str, float], palette: np.ndarray | None = None) -> Targets:
    """Per style group, each style layer's per-channel histogram (as
    quantiles), its images' blended equally."""
    def of_image(style: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            features = job.context.encode(style, list(layers))
        return {name: quantiles(features[name]) for name in layers}

    return group_means(job, palette, of_image)


def group_means(job: FrameJob, palette: np.ndarray | None,
                of_image: Callable[[torch.Tensor], Mapping[str, torch.Tensor]]) -> Targets:
    """Per style group, the mean over its images of ``of_image``'s targets."""
    _, _, height, width = job.content.shape
    targets = []
    for group in job.context.style_groups(height, width, palette):
        each = [of_image(style) for style in group]
        targets.append({name: torch.stack([image[name] for image in each]).mean(0) for name in each[0]})
    return targets


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
