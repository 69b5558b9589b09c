"""A multi-layer encoder over VGG-19's convolutional part with named layers.

The encoder takes RGB images in [0, 1], normalises them the torchvision way,
and returns the activations asked for by name (``conv1_1``, ``relu1_1``,
``pool1``, …), running the network only as deep as the deepest one. Its ReLUs
are not in place, so a ``conv*`` activation is the true pre-ReLU response and
a ``relu*`` one the rectified response: the losses use ``relu*`` layers, the
activations Gatys et al. used.

Both weight sources (torchvision's ``vgg19-dcbb9e9d.pth`` and the Oxford/Caffe
network converted in :mod:`framestyle.transfer.weights`) load into this one module.

``padding="zero"`` is the network as published: the first convolution pads
with the colour its weights treat as zero (``pad_rgb``, part of the weights),
the others with zeros. ``"reflect"`` and ``"replicate"`` pad every
convolution with the image's (or activations') own edge instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

# VGG-19 halves the image four times before relu5_1; below this short side the
# deep layers would have no pixels left, so smaller images are optimised enlarged.
MIN_SIDE = 32
# What torch's Conv2d calls each of --padding's (settings.PADDINGS); conv1_1's zero padding is done by hand.
PADDING_MODES: dict[str, Literal["zeros", "reflect", "replicate"]] = {
    "zero": "zeros", "reflect": "reflect", "replicate": "replicate"}

BLOCK_CONVS = (2, 2, 4, 4, 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """Names of torchvision's ``vgg19().features`` modules, in order (37)."""
    names = []
    for block, convs in enumerate(BLOCK_CONVS, start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return names


LAYER_NAMES = layer_names()
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}
CONV_INDICES = [i for i, name in enumerate(LAYER_NAMES) if name.startswith("conv")]


class PretrainedConv(nn.Conv2d):
    """A convolution whose weights are copied in right after it is built: no
    random initialisation (most of building the network), and unlike
    ``nn.utils.skip_init`` no meta tensors, whose first use imports sympy
    and costs every process 1.3 s."""

    def reset_parameters(self) -> None:
        pass


class VGG19Encoder(nn.Module):
    """VGG-19 features that return named activations.

    ``state`` uses torchvision's keys (``features.0.weight`` …); only the
    convolutions up to ``deepest`` are built. ``pad_rgb`` is the [0, 1] RGB
    colour that the first convolution's zero padding stands for (the ImageNet
    mean for torchvision weights; the Caffe mean for the Oxford network),
    used with ``padding="zero"``.
    """

    mean: torch.Tensor
    std: torch.Tensor
    pad_rgb: torch.Tensor

    def __init__(
        self,
        state: Mapping[str, torch.Tensor],
        pad_rgb: Iterable[float] = IMAGENET_MEAN,
        deepest: str = "relu5_1",
        pooling: str = "max",
        padding: str = "zero",
    ) -> None:
        super().__init__()
        if deepest not in LAYER_INDEX:
            raise ValueError(f"unknown VGG-19 layer {deepest!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {', '.join(PADDING_MODES)}, not {padding!r}")
        self.padding = padding
        zero = padding == "zero"
        self.depth = LAYER_INDEX[deepest] + 1
        layers: list[nn.Module] = []
        for index, name in enumerate(LAYER_NAMES[: self.depth]):
            if name.startswith("conv"):
                weight = state[f"features.{index}.weight"]
                pad = 0 if index == 0 and zero else 1  # the first zero pad is forward()'s
                conv = PretrainedConv(weight.shape[1], weight.shape[0], 3, padding=pad,
                                      padding_mode=PADDING_MODES[padding])
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    conv.bias.copy_(state[f"features.{index}.bias"])  # type: ignore[union-attr]  # bias=True
                layers.append(conv)
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=False))
            else:
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                layers.append(pool(kernel_size=2, stride=2))
        self.layers = nn.ModuleList(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("pad_rgb", torch.tensor(list(pad_rgb), dtype=torch.float32).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` for ``image`` (Bx3xHxW RGB in [0, 1])."""
        wanted = set(layers)
        unknown = wanted - set(LAYER_INDEX)
        if unknown:
            raise KeyError(f"unknown VGG-19 layer(s): {', '.join(sorted(unknown))}")
        last = max(LAYER_INDEX[name] for name in wanted)
        if last >= self.depth:
            raise KeyError(f"layer {LAYER_NAMES[last]!r} is deeper than this encoder was built")
        x = image
        if self.padding == "zero":
            # Pad in pixel space with the colour the weights treat as zero, then
            # normalise: exact for both weight sources, also at the borders.
            x = F.pad(image - self.pad_rgb, (1, 1, 1, 1)) + self.pad_rgb
        x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for index in range(last + 1):
            x = self.layers[index](x)
            name = LAYER_NAMES[index]
            if name in wanted:
                out[name] = x
        return out
