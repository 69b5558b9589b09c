"""``framestyle bench``: how fast one optimisation iteration is on this machine.

An iteration is what every optimizer step costs: VGG-19 forward to
``relu5_1`` on a batch of images, the content and per-image Gram losses, and
the backward pass to the pixels (the network's weights are frozen, so the
backward pass computes input gradients only and costs about one forward).
For each precision and batch size asked for, side by side in one process:
milliseconds per iteration (and per image), the VGG-19 GFLOP per iteration,
the GFLOP/s achieved, and that as a fraction of the device's peak, measured
with a large matrix product in the same precision. ``--video`` adds frames
per second for a real clip with warm start, through the whole pipeline.

A benchmark, not a test: run it alone; other work on the machine skews it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import torch

from framestyle.engine.device import autocast_dtype, cpu_has_native_bf16, native_bf16_turned_off, resolve_device
from framestyle.engine.runtime import encode_in
from framestyle.settings import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS
from framestyle.transfer.losses import ContentLoss, StyleLoss, gram
from framestyle.transfer.optimize import Task, WeightedLoss, step_together
from framestyle.transfer.vgg import VGG19Encoder
from framestyle.transfer.weights import resolve_weights

# (input channels, output channels) of each convolution up to conv5_1, and
# how many 2x poolings come before it.
CONVS = [(3, 64, 0), (64, 64, 0), (64, 128, 1), (128, 128, 1), (128, 256, 2), (256, 256, 2),
         (256, 256, 2), (256, 256, 2), (256, 512, 3), (512, 512, 3), (512, 512, 3), (512, 512, 3),
         (512, 512, 4)]

K = TypeVar("K")


def vgg_gflop(height: int, width: int) -> float:
    """GFLOP of one VGG-19 forward pass to conv5_1 (multiply and add counted
    as two; pooling, ReLU and padding left out)."""
    total = 0
    for cin, cout, pools in CONVS:
        total += 2 * cin * cout * 9 * (height >> pools) * (width >> pools)
    return total / 1e9


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class IterationTimer:
    """``batch`` frames optimised together as a run does it: each with its
    own content and style losses and its own L-BFGS, advanced by
    :func:`~framestyle.transfer.optimize.step_together`; :meth:`time` times one
    iteration of all of them."""

    def __init__(self, encoder: torch.nn.Module, device: torch.device, dtype: torch.dtype | None,
                 batch: int, size: int) -> None:
        self.device = device
        generator = torch.Generator().manual_seed(0)

        def encode(image: torch.Tensor, layers: Sequence[str]) -> Mapping[str, torch.Tensor]:
            return encode_in(encoder, image, layers, dtype)

        self.encode = encode
        style_layers = dict(DEFAULT_STYLE_LAYERS)
        self.tasks = []
        for _ in range(batch):
            content = torch.rand(1, 3, size, size, generator=generator).to(device)
            style = torch.rand(1, 3, size, size, generator=generator).to(device)
            with torch.no_grad():
                target = encode(content, [DEFAULT_CONTENT_LAYER])[DEFAULT_CONTENT_LAYER]
                grams = {name: gram(f) for name, f in encode(style, list(style_layers)).items()}
            losses = [WeightedLoss("content", 1.0, ContentLoss(DEFAULT_CONTENT_LAYER, target)),
                      WeightedLoss("style", 5.0, StyleLoss(style_layers, grams))]
            optimizer = lambda params: torch.optim.LBFGS(params, lr=1, max_iter=1)  # noqa: E731
            self.tasks.append(Task(content, losses, encode, optimizer, 10**9, clamp_each_step=True))

    def time(self) -> float:
        synchronise(self.device)
        started = time.perf_counter()
        step_together(self.tasks, self.encode)
        synchronise(self.device)
        return time.perf_counter() - started


def seconds_per_iteration(timers: Mapping[K, IterationTimer], iterations: int) -> dict[K, float]:
    """Median seconds of one iteration of each timer's frames, the timers
    taking turns iteration by iteration, so that whatever else the machine
    does in the meantime weighs on all of them alike."""
    times: dict[K, list[float]] = {key: [] for key in timers}
    for round_ in range(iterations + 2):  # the first two warm caches and allocators up
        for key, timer in timers.items():
            seconds = timer.time()
            if round_ >= 2:
                times[key].append(seconds)
    return {key: statistics.median(values) for key, values in times.items()}


def peak_gflops(device: torch.device, dtype: torch.dtype | None) -> float:
    """Best of 10 square matrix products in ``dtype`` (float32 if None), as
    large as takes 50 ms or the size cap: bf16 on a CPU without native bf16
    runs at a few GFLOP/s, where a 2048² product would take seconds."""
    cap = 4096 if device.type == "cuda" else 2048
    n = 256
    while n < cap and product_seconds(n, device, dtype) < 0.05:
        n *= 2
    best = min(product_seconds(n, device, dtype) for _ in range(10))
    return 2 * n**3 / best / 1e9


def product_seconds(n: int, device: torch.device, dtype: torch.dtype | None) -> float:
    a = torch.rand(n, n, device=device, dtype=dtype or torch.float32)
    b = torch.rand(n, n, device=device, dtype=dtype or torch.float32)
    synchronise(device)
    started = time.perf_counter()
    (a @ b).sum().item()
    synchronise(device)
    return time.perf_counter() - started


def video_frames_per_second(clip: Path, frames: int, size: int, precision: str, device: str,
                            batch: int = 1) -> tuple[float, str]:
    """Frames per second for the first ``frames`` frames of ``clip`` through
    the whole pipeline with the default settings (warm start; with ``batch``
    above 1, that many segments side by side), and a summary."""
    from framestyle.api import run
    from framestyle.media.encodings import ffmpeg_exe

    style = bundled_style()
    with tempfile.TemporaryDirectory() as folder:
        short = Path(folder) / f"first{frames}.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-frames:v", str(frames), "-c:v", "libx264",
                        "-crf", "12", "-an", str(short)], check=True)
        summary = run(short, style, Path(folder) / "out.mp4", size=size, precision=precision, device=device,
                      batch_size=batch, verbosity=-1)
        report = (Path(folder) / "out.mp4.report.json").read_text()
    stats = json.loads(report)["summary"]
    described = (f"{stats['frames']} frames, cold {stats['cold_iterations_mean'] or 0:.0f} it, "
                 f"warm {stats['warm_iterations_mean'] or 0:.1f} it on average")
    return stats["frames"] / summary.seconds, described


def video_line(clip: str, size: int, precision: str, batch: int, fps: float, described: str) -> str:
    """The bench's line for a video's timing (benchmarks/gpu_check.py reads it)."""
    return f"video {clip} at {size} px, {precision}, batch {batch}: {fps:.3f} frames/s ({described})"


def bundled_style() -> Path:
    """The style image the video timing uses, shipped inside the package
    (an installed framestyle has no samples/ folder)."""
    return Path(__file__).resolve().parent / "data" / "swirls.jpg"


def cpu_kind() -> str:
    """Which of the two kinds of CPU this is, for the figures' sake."""
    if cpu_has_native_bf16():
        return "native bf16 (AVX512-BF16 or AMX): auto runs bf16"
    if native_bf16_turned_off():
        return "treated as without native bf16 (FRAMESTYLE_NO_NATIVE_BF16): auto runs fp32"
    return "no native bf16: auto runs fp32, bf16 is emulated and slow"


def main(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    weights = resolve_weights(args.weights)
    encoder = VGG19Encoder(weights.state, weights.pad_rgb, deepest="relu5_1").to(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    where = f"{device}" + (f", {torch.get_num_threads()} threads, {cpu_kind()}" if device.type == "cpu" else
                           f", {torch.cuda.get_device_name(device)}")
    print(f"framestyle bench: {where}, {args.size}x{args.size} px, median of {args.iterations} iterations, "
          "the configurations taking turns")
    header = f"{'precision':>9} {'batch':>5} {'ms/iter':>9} {'ms/image':>9} {'GFLOP/iter':>10} " \
             f"{'GFLOP/s':>8} {'peak':>8} {'of peak':>7}"
    print(header)
    dtypes = {precision: autocast_dtype(precision, device) for precision in args.precision}
    peaks = {precision: peak_gflops(device, dtype) for precision, dtype in dtypes.items()}
    timers = {(precision, batch): IterationTimer(encoder, device, dtype, batch, args.size)
              for precision, dtype in dtypes.items() for batch in args.batch}
    measured = seconds_per_iteration(timers, args.iterations)
    first_precision, first_batch = args.precision[0], args.batch[0]
    for (precision, batch), seconds in measured.items():
        work = 2 * vgg_gflop(args.size, args.size) * batch  # forward + input-gradient backward
        achieved = work / seconds
        name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtypes[precision]]
        print(f"{name:>9} {batch:>5} {seconds * 1e3:>9.1f} {seconds * 1e3 / batch:>9.1f} {work:>10.4g} "
              f"{achieved:>8.4g} {peaks[precision]:>8.4g} {achieved / peaks[precision]:>7.2f}")
        if batch != first_batch:
            ratio = seconds / measured[precision, first_batch]
            print(f"{'':>15}{ratio:.2f}x the time of batch {first_batch} per iteration")
        if precision != first_precision:
            print(f"{'':>15}{seconds / measured[first_precision, batch]:.2f}x the time of {first_precision} "
                  f"at batch {batch}")
    if args.video:
        for precision in args.precision:
            for batch in args.batch:
                fps, described = video_frames_per_second(args.video, args.frames, args.size, precision,
                                                         args.device, batch)
                print(video_line(args.video.name, args.size, precision, batch, fps, described))
    return 0
