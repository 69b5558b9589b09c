"""A colour-statistics loss for framestyle: ``--loss color-stats=WEIGHT``.

It pulls each RGB channel's mean and standard deviation of the image towards
the style image's, a cheap global complement to the Gram-matrix style loss
(which matches textures, and colours only through them).
"""

from __future__ import annotations

import torch

import framestyle
from framestyle.types import FrameJob, LossSpec


def channel_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = image.flatten(2)  # B x 3 x pixels
    return flat.mean(-1), flat.std(-1)


class ColorStatsLoss:
    layers = ()  # pixels only: no VGG-19 activations needed

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std

    def __call__(self, image, features):
        mean, std = channel_stats(image)
        return (mean - self.mean).square().mean() + (std - self.std).square().mean()


def build(job: FrameJob) -> ColorStatsLoss:
    _, _, height, width = job.content.shape
    cache = job.context.cache("colorstats")  # the style's statistics, once per size
    if (height, width) not in cache:
        stats = [channel_stats(style) for style in job.context.style_images(height, width)]
        cache[height, width] = (torch.stack([m for m, _ in stats]).mean(0),
                                torch.stack([s for _, s in stats]).mean(0))
    return ColorStatsLoss(*cache[height, width])


@framestyle.hookimpl
def register_losses(register):
    register(LossSpec("color-stats", build, default_weight=0.0,
                      description="match the style's per-channel colour mean and spread"))
