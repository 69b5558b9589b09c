"""The method framestyle started from against its defaults, pair by pair, in one run.

    .venv/bin/python benchmarks/seed_race.py --pair PHOTO:PAINTING [--pair …] [--size 256]
        [--precisions auto,fp32] [--seed-objectives seed.json]

The seed method: Adam, learning rate 0.003 on the ImageNet-normalised image
(0.003 × 0.226 on [0, 1] pixels), float32, at full size only, from the
content, 5000 iterations. Each photo is fitted to ``--size`` on its long side
once, so both methods get the very same pixels; the objective is
``quality_race.objective`` of each result as written. A pair's line gives both
times, both objectives, how many times faster the defaults were and how far
their objective is from the seed's (negative: better).

The seed's 5000 iterations take 20–60 minutes a pair on a 2-core CPU. Its
objective does not depend on the machine's load, its time does: with
``--seed-objectives FILE`` a pair whose seed objective the file holds (from an
earlier full run, which writes it there) only times ``--seed-timed``
iterations, alone, and scales that time to 5000 (an Adam iteration costs the
same from the first to the last). The seed is timed as it ran, with direct
convolutions throughout. Run it alone: two processes on two cores slow each
other badly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from quality_race import SEED, objective

import framestyle
import framestyle.engine.runtime
from framestyle.bench import cpu_kind
from framestyle.media.images import fit_long_side, read_image, resize


def timed(content: np.ndarray, style: np.ndarray, **options: object) -> tuple[float, float]:
    """Seconds and objective of one stylisation of ``content``."""
    started = time.perf_counter()
    out = framestyle.stylize(content, style, device="cpu", **options)
    return time.perf_counter() - started, objective(out, content, style)


@contextlib.contextmanager
def direct_convolutions() -> Iterator[None]:
    """The seed as it ran: oneDNN's direct convolutions, not the Winograd
    ones framestyle's float32 runs on the CPU have used since (docs/performance/speed.md:
    Winograd)."""
    original = framestyle.engine.runtime.use_winograd
    framestyle.engine.runtime.use_winograd = lambda encoder: None
    try:
        yield
    finally:
        framestyle.engine.runtime.use_winograd = original


def seed_figures(key: str, content: np.ndarray, style: np.ndarray, args: argparse.Namespace,
                 known: dict[str, float]) -> tuple[float, float, str]:
    """The seed's seconds and objective for a pair, and how they were had."""
    with direct_convolutions():
        return seed_run(key, content, style, args, known)


def seed_run(key: str, content: np.ndarray, style: np.ndarray, args: argparse.Namespace,
             known: dict[str, float]) -> tuple[float, float, str]:
    size, iterations = args.size, args.seed_iterations
    if key in known:
        seconds, _ = timed(content, style, size=size, iterations=args.seed_timed, **SEED)
        return seconds * iterations / args.seed_timed, known[key], f"time from {args.seed_timed} it"
    seconds, value = timed(content, style, size=size, iterations=iterations, **SEED)
    known[key] = value
    if args.seed_objectives:
        args.seed_objectives.write_text(json.dumps(known, indent=1))
    return seconds, value, "full run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True, help="PHOTO:PAINTING (repeat)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precisions", default="auto,fp32", help="the defaults in these precisions")
    parser.add_argument("--seed-iterations", type=int, default=5000)
    parser.add_argument("--seed-timed", type=int, default=250)
    parser.add_argument("--seed-objectives", type=Path, help="JSON of seed objectives, read and written")
    args = parser.parse_args()
    known = json.loads(args.seed_objectives.read_text()) if args.seed_objectives and args.seed_objectives.exists() \
        else {}
    print(f"{cpu_kind()}, {torch.get_num_threads()} threads, {args.size} px")
    for pair in args.pair:
        photo_path, style_path = (Path(p) for p in pair.split(":"))
        photo = read_image(photo_path)
        content = resize(photo, *fit_long_side(photo.shape[1], photo.shape[0], args.size))
        style = read_image(style_path)
        key = f"{photo_path.name}:{style_path.name}:{args.size}:{args.seed_iterations}"
        seed_seconds, seed_value, how = seed_figures(key, content, style, args, known)
        print(f"{photo_path.name} ({content.shape[1]}x{content.shape[0]}) + {style_path.name}: seed "
              f"{seed_seconds:.0f} s ({how}), objective {seed_value:.4f}", flush=True)
        for precision in args.precisions.split(","):
            seconds, value = timed(content, style, size=args.size, precision=precision)
            print(f"  defaults, {precision:<5} {seconds:6.1f} s  objective {value:.4f}  "
                  f"1/{seed_seconds / seconds:.0f} of the seed's time, {100 * (value / seed_value - 1):+.1f}%",
                  flush=True)


if __name__ == "__main__":
    main()
