"""Whole float32 CPU iterations, VGG-19's convolutions direct and by Winograd (docs/performance/speed.md: Winograd).

    .venv/bin/python benchmarks/winograd.py [--sizes 91,128,181,256,512] [--repeats 7]
        [--layers conv3_2,...]   # a set of layers to try besides framestyle's

An iteration is what a step of framestyle's optimisation costs in the
network: VGG-19 (the real weights) forward to ``relu5_1``, the content and
style losses' Grams, and the backward pass to the pixels. The variants take
turns iteration by iteration at each size (a 3:2 image of that long side);
each line gives the median milliseconds and the ratio to direct. Also prints
how far the Winograd gradient is from the direct one. Run it alone.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from framestyle.bench import cpu_kind
from framestyle.transfer.losses import gram
from framestyle.transfer.vgg import VGG19Encoder
from framestyle.transfer.weights import resolve_weights
from framestyle.transfer.winograd import LAYERS, use_winograd

LOSS_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]


def iteration(encoder: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The pixels' gradient of a Gram-and-content loss: one step's network work."""
    pixels = image.detach().requires_grad_(True)
    features = encoder(pixels, LOSS_LAYERS)
    loss = sum(gram(value).square().mean() for value in features.values()) + features["relu4_2"].square().mean()
    loss.backward()
    assert pixels.grad is not None
    return pixels.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="91,128,181,256,512")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", action="append", default=[], help="another comma-separated set to try")
    parser.add_argument("--min-work", type=int, action="append", default=[],
                        help="another smallest input (positions x channels) to use Winograd for")
    args = parser.parse_args()
    weights = resolve_weights()
    direct = VGG19Encoder(weights.state, weights.pad_rgb, deepest="relu5_1")
    variants = {"direct": direct}
    for layers in [",".join(LAYERS), *args.layers]:
        encoder = copy.deepcopy(direct)
        use_winograd(encoder, tuple(layers.split(",")))
        variants["winograd" if layers == ",".join(LAYERS) else layers] = encoder
    for min_work in args.min_work:
        encoder = copy.deepcopy(direct)
        use_winograd(encoder, LAYERS, min_work)
        variants[f"min {min_work}"] = encoder
    print(f"CPU: {cpu_kind()}, {torch.get_num_threads()} threads, float32")
    for size in (int(s) for s in args.sizes.split(",")):
        image = torch.rand(1, 3, round(size * 2 / 3), size, generator=torch.Generator().manual_seed(0))
        reference = iteration(direct, image)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats + 1):  # the first round warms up
            for name, encoder in variants.items():
                started = time.perf_counter()
                iteration(encoder, image)
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times["direct"][1:])
        for name, encoder in variants.items():
            ms = statistics.median(times[name][1:])
            error = float((iteration(encoder, image) - reference).norm() / reference.norm())
            print(f"{tuple(image.shape[-2:])} {name:<10} {ms * 1000:7.1f} ms  x{ms / base:.3f}  "
                  f"gradient off by {error:.1e}", flush=True)


if __name__ == "__main__":
    main()
