"""Exact tiled evaluation: the loss and gradient of a whole image, computed
one tile at a time, so memory is bounded by a tile rather than the image.

Gatys et al.'s losses are functions of sums over positions: a Gram matrix is
Σₚ F(p)F(p)ᵀ / N, a content or temporal term Σₚ (F(p) − T(p))² / N. A
tileable loss (:class:`framestyle.types.TileableLoss`) splits itself into
``partial`` sums over the positions a tile owns and a ``total`` of those
sums. VGG-19's activations at a tile's owned positions equal the whole
image's when the tile carries a halo of real pixels at least as wide as the
deepest layer's receptive radius, and its edges keep the pooling grid (every
edge a multiple of the deepest layer's stride, or the image's own edge).

So :func:`tiled_backward` runs twice over the tiles: first without a graph,
adding up every loss's sums; then, with ∂loss/∂sums formed once from them, a
forward and backward per tile of ⟨∂loss/∂sums, partial sums⟩, whose gradient
is that tile's share of the whole image's. The price is one more forward
pass and the halo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

from framestyle.transfer.vgg import LAYER_INDEX, LAYER_NAMES

Sums = dict[str, torch.Tensor]

# Set while a tiled pass runs its tiles: an encoder that tiles large images
# by itself (the run's, for targets) must take each tile whole.
_INSIDE_TILES: ContextVar[bool] = ContextVar("framestyle_inside_tiles", default=False)


def inside_tiles() -> bool:
    """Whether the encoder is being called for one tile of a tiled pass."""
    return _INSIDE_TILES.get()


@contextmanager
def tile_by_tile() -> Iterator[None]:
    token = _INSIDE_TILES.set(True)
    try:
        yield
    finally:
        _INSIDE_TILES.reset(token)
Encode = Callable[[torch.Tensor, Sequence[str]], Mapping[str, torch.Tensor]]


def stride(layer: str | None) -> int:
    """Pixels per position of ``layer``'s activations (None: the image, 1)."""
    if layer is None:
        return 1
    pools = sum(1 for name in LAYER_NAMES[: LAYER_INDEX[layer] + 1] if name.startswith("pool"))
    return 2**pools


def receptive_radius(layer: str) -> int:
    """How far (in pixels) beyond its own stride cell an activation of
    ``layer`` sees: each 3x3 convolution adds one step, each 2x2 pooling one
    step and doubles the step."""
    radius, step = 0, 1
    for name in LAYER_NAMES[: LAYER_INDEX[layer] + 1]:
        if name.startswith("conv"):
            radius += step
        elif name.startswith("pool"):
            radius += step
            step *= 2
    return radius


def layer_size(size: tuple[int, int], layer: str | None) -> tuple[int, int]:
    """(height, width) of ``layer``'s activations for an image of ``size``."""
    s = stride(layer)
    return size[0] // s, size[1] // s


def positions(size: tuple[int, int], layer: str | None) -> int:
    """How many positions ``layer`` has for an image of ``size`` (height, width)."""
    s = stride(layer)
    return (size[0] // s) * (size[1] // s)


@dataclass(frozen=True)
class Tile:
    """One tile of an image of ``size`` (height, width): the pixels it
    carries (``crop``: top, bottom, left, right, halo included) and the
    positions it owns (``own``, in the same order), whose activations are
    exact. Every owned position of the image belongs to exactly one tile."""

    size: tuple[int, int]
    crop: tuple[int, int, int, int]
    own: tuple[int, int, int, int]

    def of(self, image: torch.Tensor) -> torch.Tensor:
        """The pixels this tile carries, from a whole image (…xHxW)."""
        top, bottom, left, right = self.crop
        return image[..., top:bottom, left:right]

    def owned(self, tensor: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """The owned positions of ``tensor``, computed on this tile's crop at
        ``layer`` (None: pixels)."""
        s = stride(layer)
        top, _, left, _ = self.crop
        y0, y1, x0, x1 = self.own
        return tensor[..., (y0 - top) // s: y1 // s - top // s, (x0 - left) // s: x1 // s - left // s]

    def same(self, whole: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """The owned positions of ``whole``, a map of the whole image at
        ``layer`` (a target to compare :meth:`owned` with)."""
        s = stride(layer)
        y0, y1, x0, x1 = self.own
        return whole[..., y0 // s: y1 // s, x0 // s: x1 // s]


@dataclass(frozen=True)
class Tiling:
    """Square tiles owning ``side`` pixels a side (the last ones in a row or
    column less), each carrying ``halo`` more pixels on every side the image
    has them; ``side`` and ``halo`` are multiples of ``align``."""

    side: int
    halo: int
    align: int

    @classmethod
    def for_layers(cls, side: int, layers: Iterable[str], halo: int | None = None) -> Tiling:
        """Tiles of about ``side`` pixels (rounded up to the pooling grid)
        exact for ``layers``. ``halo`` overrides the exact one: only to show
        what a too small one does."""
        layers = list(layers)
        deepest = max(layers, key=LAYER_INDEX.__getitem__) if layers else None
        align = stride(deepest)
        needed = receptive_radius(deepest) if deepest else 1  # 1: a neighbour for pixel differences
        return cls(round_up(side, align), round_up(needed if halo is None else halo, align), align)

    def tiles(self, height: int, width: int) -> list[Tile]:
        tiles = []
        for y0 in range(0, height, self.side):
            for x0 in range(0, width, self.side):
                y1, x1 = min(height, y0 + self.side), min(width, x0 + self.side)
                crop = (max(0, y0 - self.halo), min(height, y1 + self.halo),
                        max(0, x0 - self.halo), min(width, x1 + self.halo))
                tiles.append(Tile((height, width), crop, (y0, y1, x0, x1)))
        return tiles

    def count(self, height: int, width: int) -> int:
        return math.ceil(height / self.side) * math.ceil(width / self.side)

    def carried(self) -> int:
        """The side of the largest crop a tile carries."""
        return self.side + 2 * self.halo


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def is_tileable(loss: Any) -> bool:
    """Whether ``loss`` splits into partial sums (``partial`` and ``total``)."""
    return callable(getattr(loss, "partial", None)) and callable(getattr(loss, "total", None))


def add_sums(into: Sums | None, part: Mapping[str, torch.Tensor]) -> Sums:
    if into is None:
        return {key: value.detach().float().clone() for key, value in part.items()}
    for key, value in part.items():
        into[key] += value.detach().float()
    return into


def tiled_backward(image: torch.Tensor, terms: Sequence[Any], encode: Encode,
                   tiling: Tiling) -> dict[str, torch.Tensor]:
    """The weighted value of every term (with ``name``, ``weight`` and a
    tileable ``loss``) for the whole ``image``, their summed gradient added
    to ``image.grad``, tile by tile. Returns the values by name (detached)."""
    size = (image.shape[-2], image.shape[-1])
    tiles = tiling.tiles(*size)
    layers = sorted({layer for term in terms for layer in term.loss.layers})
    pixels = image.detach()
    sums = summed_partials([term.loss for term in terms], pixels, tiles, encode, layers)
    values = {term.name: term.weight * term.loss.total(leaf, size) for term, leaf in zip(terms, sums, strict=True)}
    total = torch.stack([value.float() for value in values.values()]).sum()
    if total.requires_grad:
        total.backward()
    # ∂loss/∂sums, fixed: each tile's ⟨factor, its partial sums⟩ has that tile's share of the gradient.
    factors = [{key: leaf.grad for key, leaf in found.items() if leaf.grad is not None} for found in sums]
    grad = torch.zeros_like(pixels)
    add_tile_gradients(grad, pixels, tiles, terms, factors, encode, layers)
    image.grad = grad if image.grad is None else image.grad + grad
    return {name: value.detach() for name, value in values.items()}


def add_tile_gradients(grad: torch.Tensor, pixels: torch.Tensor, tiles: list[Tile], terms: Sequence[Any],
                       factors: list[Sums], encode: Encode, layers: list[str]) -> None:
    """Each tile's forward and backward of ⟨factor, its partial sums⟩, its
    gradient added into ``grad`` (the whole image's)."""
    for tile in tiles:
        crop = tile.of(pixels).clone().requires_grad_()
        features = encode(crop, layers) if layers else {}
        surrogate = torch.zeros((), device=pixels.device)
        for term, factor in zip(terms, factors, strict=True):
            if factor:
                part = term.loss.partial(crop, features, tile)
                surrogate = surrogate + sum((factor[key] * part[key].float()).sum() for key in factor)
        if surrogate.requires_grad:
            surrogate.backward()
            assert crop.grad is not None
            tile.of(grad).add_(crop.grad)


def summed_partials(losses: list[Any], pixels: torch.Tensor, tiles: list[Tile], encode: Encode,
                    layers: list[str]) -> list[Sums]:
    """Each loss's partial sums added over ``tiles`` (one pass a tile, no
    graph), as leaves that take a gradient."""
    sums: list[Sums | None] = [None] * len(losses)
    with torch.no_grad(), tile_by_tile():  # no graph, yet each tile whole
        for tile in tiles:
            crop = tile.of(pixels)
            features = encode(crop, layers) if layers else {}
            for i, loss in enumerate(losses):
                sums[i] = add_sums(sums[i], loss.partial(crop, features, tile))
    return [{key: value.requires_grad_() for key, value in (found or {}).items()} for found in sums]


def tiled_features(encode: Encode, image: torch.Tensor, layers: Iterable[str],
                   tiling: Tiling) -> dict[str, torch.Tensor]:
    """The whole image's activations of ``layers``, stitched from tiles'
    owned positions (no graph): the same as one pass, in a tile's memory."""
    layers = list(layers)
    height, width = image.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for tile in tiling.tiles(height, width):
            features = encode(tile.of(image), layers)
            for layer in layers:
                part = tile.owned(features[layer], layer)
                if layer not in out:
                    s = stride(layer)
                    out[layer] = part.new_empty((*part.shape[:2], height // s, width // s))
                tile.same(out[layer], layer).copy_(part)
    return out


def tiled_grams(encode: Encode, image: torch.Tensor, layers: Iterable[str], tiling: Tiling) -> dict[str, torch.Tensor]:
    """Gram matrices (mean over positions, float32) of the whole image's
    activations, accumulated over tiles without keeping them."""
    layers = list(layers)
    height, width = image.shape[-2:]
    sums: Sums | None = None
    with torch.no_grad():
        for tile in tiling.tiles(height, width):
            features = encode(tile.of(image), layers)
            part = {}
            for layer in layers:
                flat = tile.owned(features[layer], layer).flatten(2).float()
                part[layer] = torch.bmm(flat, flat.transpose(1, 2))
            sums = add_sums(sums, part)
    assert sums is not None
    return {layer: sums[layer] / positions((height, width), layer) for layer in layers}
