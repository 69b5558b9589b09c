"""Objective against time for several settings, side by side in one process.

    .venv/bin/python benchmarks/quality_race.py [--size 256] [--checkpoints 300,600] [--configs …]

The objective is the one framestyle minimises with its defaults, evaluated in
float32 on each result *as written* (clamped, 8-bit): content = MSE of the
relu4_2 activations relative to the content's mean square; style = Σ w_l ·
MSE of the Grams of relu1_1 … relu5_1 relative to the style Gram's mean
square (w = 1, 0.75, 0.2, 0.2, 0.2); objective = content + 5 · style. Each
configuration runs the same photo and painting; a benchmark, run it alone.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

import framestyle
from framestyle.builtin.losses import build_content, build_style
from framestyle.engine.runner.context import PluginContext
from framestyle.engine.runtime import Runtime
from framestyle.host import PluginHost
from framestyle.media.images import fit_long_side, read_image, resize
from framestyle.settings import Settings
from framestyle.transfer.margin import widen
from framestyle.transfer.pixels import to_tensor
from framestyle.types import FrameJob, SourceInfo

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def objective(rgb: np.ndarray, content: np.ndarray, style: np.ndarray, margin: int = 0) -> float:
    """content + 5 · style of ``rgb`` (as written), in float32; with a
    ``margin``, of the image and the content mirrored out that far, so that
    its edges count as its inside does (VGG-19's zero padding alone favours
    the line along the edges that a run without a margin leaves)."""
    settings = Settings(precision="fp32", device="cpu")
    key = hashlib.sha1(style.tobytes()).hexdigest()
    if key not in OBJECTIVE_CONTEXTS:  # the style's targets are cached in its context
        hooks = PluginHost(autoload=False).hooks
        OBJECTIVE_CONTEXTS[key] = PluginContext(Runtime(settings, styles=[[style]]), hooks, lambda step: None)
    context = OBJECTIVE_CONTEXTS[key]
    target = widen(to_tensor(content, context.device), margin)
    job = FrameJob(SourceInfo(Path("x"), "image", 1, 1, 1), 0, target, settings, context)
    image = widen(to_tensor(rgb, context.device), margin)
    layers = [settings.content_layer, *settings.style_layers]
    with torch.no_grad():
        features = context.encode(image, layers)
        return float(build_content(job)(image, features) + 5 * build_style(job)(image, features))


OBJECTIVE_CONTEXTS: dict[str, PluginContext] = {}

# The method framestyle started from: Adam, lr 0.003 on ImageNet-normalised
# pixels (× 0.226 on [0, 1]), float32, at full size only, from the content.
SEED = {"precision": "fp32", "optimizer": "adam", "learning_rate": 0.003 * 0.226, "scales": 1}


def race(name: str, content: np.ndarray, style: np.ndarray, checkpoints: list[int], **options) -> None:
    """Run ``options`` to each checkpoint (fresh from the start each time, so
    every figure is a complete run of that many iterations) and print the
    objective of the written image against the seconds it took."""
    for iterations in checkpoints:
        started = time.perf_counter()
        out = framestyle.stylize(content, style, iterations=iterations, device="cpu", **options)
        seconds = time.perf_counter() - started
        print(f"{name:<28} {iterations:>5} it {seconds:>7.1f} s  objective {objective(out, content, style):.4f}",
              flush=True)


def parse_config(name: str) -> dict[str, object]:
    """``bf16-scales3-f0.3``: precision, then optional coarse-to-fine levels
    and the share of iterations at full size."""
    precision, *rest = name.split("-")
    options: dict[str, object] = {"precision": precision, "scales": 1}
    for part in rest:
        if part.startswith("scales"):
            options["scales"] = int(part[len("scales"):])
        elif part.startswith("f"):
            options["final_share"] = float(part[1:])
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--content", type=Path, default=SAMPLES / "photos" / "chelsea.jpg")
    parser.add_argument("--style", type=Path, default=SAMPLES / "styles" / "swirls.jpg")
    parser.add_argument("--checkpoints", default="50,100,200,300")
    parser.add_argument("--configs", default="fp32,bf16,bf16-scales3",
                        help="PRECISION[-scalesN][-fSHARE], or adam-seed; comma-separated")
    args = parser.parse_args()
    photo = read_image(args.content)
    content = resize(photo, *fit_long_side(photo.shape[1], photo.shape[0], args.size))
    style = read_image(args.style)
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    print(f"content {args.content.name} at {content.shape[1]}x{content.shape[0]}, style {args.style.name}, "
          f"{torch.get_num_threads()} threads; objective of the content itself: "
          f"{objective(content, content, style):.4f}")
    named = {"adam-seed": SEED}
    for name in args.configs.split(","):
        race(name, content, style, checkpoints, size=args.size, **named.get(name) or parse_config(name))


if __name__ == "__main__":
    main()
