"""Helpers for testing framestyle plugins (and framestyle itself).

    from framestyle.testing import run_with_plugin, tiny_image, tiny_video, tiny_weights

    def test_my_writer(tmp_path):
        content = tiny_image(tmp_path / "in.png")
        result = run_with_plugin(my_plugin, [content], tmp_path / "out.gif", weights=tiny_weights())
        assert result.exit_code == 0

``run_with_plugin`` runs the whole pipeline with only the built-ins and the
given plugin registered (nothing autoloaded). ``tiny_weights`` is a random
VGG-19 that needs no download and no package, for tests where only shapes and
plumbing matter; use the real weights (the default) where the result depends
on what the network has learned.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from framestyle.events import RunEnd
from framestyle.host import PluginHost
from framestyle.transfer.weights import Weights

PATTERN_SIZE = (48, 32)  # width, height: the smallest frame VGG-19 takes without enlarging


def pattern(index: int = 0, size: tuple[int, int] = PATTERN_SIZE) -> np.ndarray:
    """A colourful test frame; ``index`` moves a bright square across it."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                      ((x // 6 + y // 6) % 2) * 200], axis=-1).astype(np.uint8)
    top, left = 4 + index, 4 + 2 * index
    frame[top: top + 8, left: left + 8] = (250, 240, 40)
    return frame


def tiny_image(path: Path, index: int = 0, size: tuple[int, int] = PATTERN_SIZE) -> Path:
    """Write :func:`pattern` to ``path`` (any format Pillow writes)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(index, size)).save(path)
    return path


def tiny_video(path: Path, frames: int = 3, fps: int = 10, size: tuple[int, int] = PATTERN_SIZE) -> Path:
    """A short lossless video of :func:`pattern` frames (FFV1 in .avi, or
    H.264 for .mp4), written with imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    width, height = size
    codec = ["-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"] if path.suffix == ".mp4" else ["-c:v", "ffv1"]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-",
               *codec, str(path)]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(pattern(i, size).tobytes() for i in range(frames))
    subprocess.run(command, input=data, check=True)
    return path


def tiny_weights(seed: int = 0) -> Weights:
    """A randomly initialised VGG-19: real shapes, no learned features."""
    import torch

    from framestyle.transfer.vgg import CONV_INDICES
    from framestyle.transfer.weights import check_state

    generator = torch.Generator().manual_seed(seed)
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]
    state = {}
    for position, index in enumerate(CONV_INDICES):
        fan_in = channels[position] * 9
        weight = torch.randn(channels[position + 1], channels[position], 3, 3, generator=generator)
        state[f"features.{index}.weight"] = weight * (2.0 / fan_in) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(channels[position + 1])
    return Weights(check_state(state, "random"), (0.485, 0.456, 0.406), "random VGG-19 (tests)")


def run_with_plugin(
    plugin: object | None,
    inputs: Sequence[Path],
    output: Path,
    *,
    style: Path | None = None,
    name: str = "plugin-under-test",
    weights: Weights | None = None,
    **options: Any,
) -> RunEnd:
    """Run framestyle on ``inputs`` with the built-ins plus ``plugin`` only.

    Defaults keep it fast: 32 px, 3 iterations. ``style`` defaults to a
    pattern image beside the output.
    """
    from framestyle.api import run

    host = PluginHost(autoload=False)
    if plugin is not None:
        host.register(plugin, name)
    if style is None:
        style = tiny_image(output.parent / ".test-style.png", index=5)
    options = {"size": 48, "iterations": 3, "first_iterations": 3, "min_iterations": 1, **options}
    return run(list(inputs), style, output, host=host, weights=weights, **options)
