"""VGG-19's deeper 3×3 convolutions by Winograd's minimal filtering, F(4×4, 3×3).

A direct 3×3 convolution costs 9 multiply-adds per output per channel pair;
F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016) computes a 4×4 block of outputs from a 6×6 block of inputs
with 36, 2.25 per output, at the price of transforming the inputs and outputs
(cheap: they are shared by all the filters). Where the channels are many and
the maps small, that beats oneDNN's direct float32 convolution; where they
are few and the maps large (VGG-19's first blocks), the transforms' memory
traffic costs more than it saves (docs/performance/speed.md: Winograd). So only
:data:`LAYERS` are swapped, on the CPU in float32 (bf16 convolutions run on
hardware made for them).

The pixels' gradient of a 3×3 convolution with padding 1 is the same kind of
convolution of the output's gradient, with the filters flipped and their
input and output channels swapped: the backward pass is Winograd too. The
filters are VGG-19's, fixed, so no gradient is computed for them. Rounding
differs from the direct convolution's by about 1e-5 of the largest output.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from framestyle.transfer.vgg import LAYER_NAMES

# Where Winograd beat oneDNN's direct convolution in whole iterations
# (benchmarks/winograd.py; the figures: docs/performance/speed.md: Winograd):
# conv3_2 and deeper, on inputs of at least MIN_WORK positions × channels.
LAYERS = ("conv3_2", "conv3_3", "conv3_4", "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1")
MIN_WORK = 128 * 1024

OUT, TILE = 4, 6  # a 6×6 input tile gives a 4×4 output tile

B_T = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
A_T = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def transformed_filters(weight: torch.Tensor) -> torch.Tensor:
    """K×C×3×3 float32 filters as (36, K, C): ``G g Gᵀ`` per channel pair."""
    g = torch.tensor(G, dtype=weight.dtype)
    u = torch.einsum("ai,kcij,bj->abkc", g, weight, g)
    return u.reshape(TILE * TILE, weight.shape[0], weight.shape[1]).contiguous()


def kron(rows: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    """``M ⊗ M``: applies ``M · X · Mᵀ`` to a flattened square tile in one product."""
    m = torch.tensor(rows, dtype=torch.float64)
    return torch.kron(m, m).float()


def winograd_conv(x: torch.Tensor, filters: torch.Tensor, input_transform: torch.Tensor,
                  output_transform: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """The 3×3 convolution (stride 1, zero padding ``pad``) of ``x`` (N×C×H×W,
    float32) with ``filters`` from :func:`transformed_filters`, no bias; the
    output is (H + 2·pad − 2)×(W + 2·pad − 2). ``input_transform`` is
    ``Bᵀ ⊗ Bᵀ`` as 36 6×6 kernels, ``output_transform`` ``Aᵀ ⊗ Aᵀ`` (16×36)."""
    n, c, h_in, w_in = x.shape
    k = filters.shape[1]
    h, w = h_in + 2 * pad - 2, w_in + 2 * pad - 2
    rows, cols = -(-h // OUT), -(-w // OUT)
    # Each channel zero-padded to whole tiles, its 6×6 tiles (4 apart) transformed by one strided
    # convolution straight from the image, which lays them out channels × tiles for the products:
    # no copy of the overlapping tiles (36 values per 16 pixels) for one image, one for a batch
    # (docs/performance/speed.md: Winograd).
    padded = F.pad(x, (pad, OUT * cols + 2 - w_in - pad, pad, OUT * rows + 2 - h_in - pad))
    tiles = F.conv2d(padded.view(n * c, 1, *padded.shape[-2:]), input_transform, stride=OUT)
    inputs = tiles.view(n, c, TILE * TILE, rows * cols).permute(2, 1, 0, 3).reshape(TILE * TILE, c, n * rows * cols)
    products = torch.bmm(filters, inputs)  # one K×C product per tile position
    blocks = (output_transform @ products.view(TILE * TILE, k * n * rows * cols)).view(OUT, OUT, k, n, rows, cols)
    return blocks.permute(3, 2, 4, 0, 5, 1).reshape(n, k, rows * OUT, cols * OUT)[:, :, :h, :w]


class _Winograd(torch.autograd.Function):
    """Forward and pixels' gradient both by :func:`winograd_conv`: the
    gradient of a convolution with zero padding ``pad`` is the flipped
    filters' convolution of the output's gradient with padding ``2 − pad``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, conv: WinogradConv, pad: int) -> torch.Tensor:
        ctx.conv, ctx.pad = conv, pad
        return winograd_conv(x, conv.filters(backward=False), conv.input_transform, conv.output_transform, pad)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        conv = ctx.conv
        return winograd_conv(grad, conv.filters(backward=True), conv.input_transform, conv.output_transform,
                             2 - ctx.pad), None, None


class WinogradConv(nn.Module):
    """A fixed 3×3, stride-1, padding-1 convolution (zero, reflection or
    replicate padding) computed by Winograd in float32 on the CPU, and as
    ``conv`` itself anywhere else (autocast to a lower precision, another device)."""

    input_transform: torch.Tensor
    output_transform: torch.Tensor

    def __init__(self, conv: nn.Conv2d, min_work: int = MIN_WORK) -> None:
        super().__init__()
        self.min_work = min_work
        if (conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1
                or conv.padding_mode not in ("zeros", "reflect", "replicate")):
            raise ValueError("Winograd F(4x4, 3x3) here is for 3x3 convolutions with stride 1 and "
                             "zero, reflection or replicate padding 1")
        self.conv = conv
        self.transformed: dict[bool, torch.Tensor] = {}
        self.register_buffer("input_transform", kron(B_T).view(TILE * TILE, 1, TILE, TILE), persistent=False)
        self.register_buffer("output_transform", kron(A_T), persistent=False)

    def filters(self, backward: bool) -> torch.Tensor:
        """The filters transformed, on first use: 4× the weights' memory each
        way (~400 MB for the layers swapped), spent only where Winograd runs.
        The backward pass's are the filters flipped, channels swapped (the
        convolution that is the pixels' gradient), kept rather than derived
        by flipping the image: that saves memory but is slower (docs/performance/speed.md:
        Winograd)."""
        if backward not in self.transformed:
            weight = self.conv.weight.detach()
            self.transformed[backward] = transformed_filters(weight.flip(2, 3).transpose(0, 1) if backward else weight)
        return self.transformed[backward]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = x.shape[1] * x.shape[2] * x.shape[3] < self.min_work
        if small or x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
            return self.conv(x)
        if self.conv.padding_mode != "zeros":  # padded here; Winograd then pads nothing
            out = _Winograd.apply(F.pad(x, (1, 1, 1, 1), mode=self.conv.padding_mode), self, 0)
        else:
            out = _Winograd.apply(x, self, 1)
        return out + self.conv.bias.view(1, -1, 1, 1) if self.conv.bias is not None else out


def use_winograd(encoder: nn.Module, layers: tuple[str, ...] = LAYERS, min_work: int = MIN_WORK) -> None:
    """Swap ``encoder``'s convolutions named in ``layers`` (a
    :class:`~framestyle.transfer.vgg.VGG19Encoder`'s) for Winograd ones."""
    modules = encoder.layers
    assert isinstance(modules, nn.ModuleList)
    for index, name in enumerate(LAYER_NAMES[: len(modules)]):
        module = modules[index]
        if name in layers and isinstance(module, nn.Conv2d):
            modules[index] = WinogradConv(module, min_work)
