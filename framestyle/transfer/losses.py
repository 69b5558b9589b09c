"""The losses of Gatys et al., made independent of the network's scale.

Activations from the two VGG-19 weight sources differ in scale by orders of
magnitude, so every comparison is relative to its target: a content or style
term is ``MSE(x, target) / mean(target**2)``. With that, weights such as
``content + 5 * style`` mean the same with either network.

Gram matrices are ``F Fᵀ / (H·W)`` per image (the mean over positions), so the
style image's Grams compare with the output's whatever the two sizes are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from framestyle.transfer.tiles import Tile, layer_size, positions

EPS = 1e-12


class _GramProduct(torch.autograd.Function):
    """``F Fᵀ`` and its gradient ``(Ĝ + Ĝᵀ) F``, both in float32 whatever
    the features' dtype; the gradient is handed back in the features' dtype.

    Autograd's own version of ``F.float() @ F.float().T`` costs three
    products and adds two gradients the size of ``F``; this is two products
    and no add; the backward product stays in float32 (docs/performance/speed.md:
    Gram matrices)."""

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor) -> torch.Tensor:
        wide = flat.float()
        ctx.dtype = flat.dtype
        ctx.save_for_backward(wide)
        return torch.bmm(wide, wide.transpose(1, 2))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (wide,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), wide).to(ctx.dtype)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Per-image Gram matrices in float32: BxCxHxW (any float dtype) ->
    BxCxC, averaged over positions."""
    _, _, h, w = features.shape
    return gram_sum(features) / (h * w)


def gram_sum(features: torch.Tensor) -> torch.Tensor:
    """``F Fᵀ`` summed over positions (float32): a Gram's share from a tile."""
    return _GramProduct.apply(features.flatten(2))


def relative_mse(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``MSE(value, target) / mean(target**2)``: 1.0 means as far as zero is."""
    return (value.float() - target).square().mean() / (target.square().mean() + EPS)


class ContentLoss:
    """Relative MSE between the image's and the content's activations."""

    def __init__(self, layer: str, target: torch.Tensor) -> None:
        self.layers = (layer,)
        self.layer = layer
        self.target = target.detach().float()

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return relative_mse(features[self.layer], self.target)

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], tile: Tile) -> dict[str, torch.Tensor]:
        own = tile.owned(features[self.layer], self.layer).float()
        return {"squares": (own - tile.same(self.target, self.layer)).square().sum()}

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return sums["squares"] / self.target.numel() / (self.target.square().mean() + EPS)


class StyleLoss:
    """Weighted sum over layers of the relative MSE between Gram matrices."""

    def __init__(self, layer_weights: Mapping[str, float], targets: Mapping[str, torch.Tensor]) -> None:
        self.layer_weights = dict(layer_weights)
        self.layers = tuple(self.layer_weights)
        self.targets = {name: targets[name].detach().float() for name in self.layers}

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        terms = [
            weight * relative_mse(gram(features[name]), self.targets[name])
            for name, weight in self.layer_weights.items()
        ]
        return torch.stack(terms).sum()

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], tile: Tile) -> dict[str, torch.Tensor]:
        return {name: gram_sum(tile.owned(features[name], name)) for name in self.layers}

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        terms = [weight * relative_mse(sums[name] / positions(size, name), self.targets[name])
                 for name, weight in self.layer_weights.items()]
        return torch.stack(terms).sum()


class GuidedStyleLoss:
    """Styles by region (Gatys et al. 2017): per region, the Gram matrices of
    the activations weighted by its mask (area-averaged to each layer's
    resolution, so an edge is soft where the layer is coarse), against its
    own style's. A region counts by its share of the image: one region
    covering it all is :class:`StyleLoss`. Tileable exactly: a tile's share
    of a guided Gram is its owned activations weighted by the whole image's
    mask there."""

    def __init__(self, layer_weights: Mapping[str, float],
                 regions: Sequence[tuple[torch.Tensor, Mapping[str, torch.Tensor]]]) -> None:
        self.layer_weights = dict(layer_weights)
        self.layers = tuple(self.layer_weights)
        self.regions = [(mask.float()[None, None], {name: targets[name].detach().float() for name in self.layers})
                        for mask, targets in regions]
        self.shares = [float(mask.mean()) for mask, _ in self.regions]
        self.scaled: dict[tuple[int, int, int], torch.Tensor] = {}  # this frame's masks at each layer's size

    def whole_mask(self, region: int, size: tuple[int, int], layer: str) -> torch.Tensor:
        """Region ``region``'s mask over the whole image of ``size`` at ``layer``'s resolution."""
        return self.mask_at(region, layer_size(size, layer))

    def mask_at(self, region: int, size: Sequence[int]) -> torch.Tensor:
        key = (region, size[0], size[1])
        if key not in self.scaled:
            mask = torch.nn.functional.interpolate(self.regions[region][0], size=tuple(size), mode="area")
            self.scaled[key] = mask
        return self.scaled[key]

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        size = (image.shape[-2], image.shape[-1])
        sums = {(region, name): gram_sum(features[name].float() * self.whole_mask(region, size, name).sqrt())
                for region in range(len(self.regions)) for name in self.layers}
        return self.combined(sums, size)

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], tile: Tile) -> dict[str, torch.Tensor]:
        return {f"{region}:{name}": gram_sum(tile.owned(features[name], name).float()
                                             * tile.same(self.whole_mask(region, tile.size, name), name).sqrt())
                for region in range(len(self.regions)) for name in self.layers}

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return self.combined({(region, name): sums[f"{region}:{name}"] for region in range(len(self.regions))
                              for name in self.layers}, size)

    def combined(self, sums: Mapping[tuple[int, str], torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """The loss from each region's and layer's mask-weighted ``F Fᵀ``."""
        terms = []
        for region, ((_, targets), share) in enumerate(zip(self.regions, self.shares, strict=True)):
            for name, weight in self.layer_weights.items():
                total = self.whole_mask(region, (size[0], size[1]), name).sum().clamp(min=EPS)
                terms.append(share * weight * relative_mse(sums[region, name] / total, targets[name]))
        return torch.stack(terms).sum()


class TotalVariationLoss:
    """Mean squared difference between neighbouring pixels (smoothness)."""

    layers: Sequence[str] = ()

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
        return dx.square().mean() + dy.square().mean()

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], tile: Tile) -> dict[str, torch.Tensor]:
        # A difference belongs to its first pixel; the halo holds the second.
        dx = tile.owned(image[..., :, 1:] - image[..., :, :-1])
        dy = tile.owned(image[..., 1:, :] - image[..., :-1, :])
        return {"dx": dx.square().sum(), "dy": dy.square().sum()}

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        return sums["dx"] / (3 * height * (width - 1)) + sums["dy"] / (3 * (height - 1) * width)


class TemporalLoss:
    """Short-term temporal consistency (Ruder et al. 2016): mean squared
    difference to the warped previous stylised frame over the pixels the
    mask keeps (occlusions and motion boundaries are dropped)."""

    layers: Sequence[str] = ()

    def __init__(self, warped_previous: torch.Tensor, mask: torch.Tensor) -> None:
        self.target = warped_previous.detach()
        self.mask = mask.detach()
        self.count = self.mask.sum().clamp(min=1.0) * warped_previous.shape[1]

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return (self.mask * (image - self.target).square()).sum() / self.count

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], tile: Tile) -> dict[str, torch.Tensor]:
        difference = tile.owned(image) - tile.same(self.target)
        return {"squares": (tile.same(self.mask) * difference.square()).sum()}

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return sums["squares"] / self.count


QUANTILES = 1024  # points of a style layer's per-channel histogram that are kept


def quantiles(features: torch.Tensor, count: int = QUANTILES) -> torch.Tensor:
    """Per channel, ``count`` evenly spaced quantiles of the activations
    (1xCxHxW -> Cxcount, float32): a channel's histogram as its sorted values."""
    values = features.float().flatten(2)[0].sort(dim=1).values
    at = torch.linspace(0, values.shape[1] - 1, count, device=values.device)
    low, high = at.floor().long(), at.ceil().long()
    share = at - low
    return values[:, low] * (1 - share) + values[:, high] * share


def weighted_mean(parts: Sequence[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """Σ wᵢ · targetᵢ / Σ wᵢ: how several styles' targets blend. Gram
    matrices blend linearly; for quantile functions it is, in one dimension,
    the histogram "between" them (their Wasserstein barycentre)."""
    total = sum(weight for weight, _ in parts)
    return sum(weight / total * values for weight, values in parts)  # type: ignore[return-value]


class HistogramLoss:
    """Risser et al. (2017), "Stable and Controllable Neural Texture
    Synthesis and Style Transfer Using Histogram Losses": each style layer's
    activations, channel by channel, compared with themselves remapped onto
    the style's histogram (each value replaced by the style's value of the
    same rank). A Gram matrix keeps only second moments, so different
    histograms share it; this term pins the rest, against washed-out or
    over-bright patches. The remapped target is recomputed every step and
    carries no gradient, as in the paper. Ranks are taken over the whole
    image, so it has no exact tiled form."""

    def __init__(self, layer_weights: Mapping[str, float], targets: Mapping[str, torch.Tensor]) -> None:
        self.layer_weights = dict(layer_weights)
        self.layers = tuple(self.layer_weights)
        self.targets = {name: targets[name].detach().float() for name in self.layers}

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        terms = [weight * relative_mse(features[name].float().flatten(2)[0], matched(features[name], target))
                 for name, weight in self.layer_weights.items() for target in [self.targets[name]]]
        return torch.stack(terms).sum()


def matched(features: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """``features`` (1xCxHxW) with each channel's values replaced by the
    ``quantiles`` (Cxcount) of the same rank: its histogram made the target's."""
    with torch.no_grad():
        values = features.float().flatten(2)[0]
        positions = values.shape[1]
        order = values.argsort(dim=1)
        rank = torch.linspace(0, quantiles.shape[1] - 1, positions, device=values.device)
        low, high = rank.floor().long(), rank.ceil().long()
        share = rank - low
        ranked = quantiles[:, low] * (1 - share) + quantiles[:, high] * share
        return torch.empty_like(values).scatter_(1, order, ranked)


def style_distance(
    encoder: torch.nn.Module,
    image: torch.Tensor,
    style_image: torch.Tensor,
    layer_weights: Mapping[str, float],
) -> float:
    """The style loss of ``image`` against ``style_image`` (lower is closer)."""
    with torch.no_grad():
        targets = {k: gram(v) for k, v in encoder(style_image, layer_weights).items()}
        features = encoder(image, layer_weights)
        return float(StyleLoss(layer_weights, targets)(image, features))
