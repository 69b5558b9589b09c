"""The Python API: ``stylize`` one image in memory, or ``run`` a whole job."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from framestyle.engine.driver import Driver, validate
from framestyle.engine.runner.context import PluginContext
from framestyle.engine.runtime import Runtime
from framestyle.engine.styles import read_style
from framestyle.errors import UsageError
from framestyle.events import RunEnd
from framestyle.host import PluginHost
from framestyle.media.images import pil_to_rgb8, read_image
from framestyle.settings import Settings
from framestyle.settings.files import resolve
from framestyle.transfer.weights import Weights
from framestyle.types import FrameJob, SourceInfo

ImageLike = str | os.PathLike | np.ndarray | Image.Image


def as_rgb8(image: ImageLike) -> np.ndarray:
    """A path, a PIL image or an HxWx3 (or HxW) uint8 array as HxWx3 uint8 RGB."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))
    if isinstance(image, Image.Image):
        return pil_to_rgb8(image)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise UsageError(f"image arrays must be uint8, not {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise UsageError(f"image arrays must be HxWx3 RGB, not shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def stylize(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    plugins: Sequence[str] = (),
    host: PluginHost | None = None,
    weights: Weights | None = None,
    preset: str | None = None,
    config: str | os.PathLike | None = None,
    **options: Any,
) -> np.ndarray:
    """Stylise one image and return it as HxWx3 uint8 RGB (uint16 with ``bit_depth=16``).

    ``options`` are :class:`Settings` fields (``size``, ``iterations``,
    ``style_weight``, ``style_weights``, ``style_scale``, ``preserve_colors``,
    ``optimizer``, ``device``, …) and override ``preset`` and the ``config``
    file, as on the command line (the API reads a config file only when
    given one). A style may be a folder of images that form one style.
    Installed plugins take part as in the CLI; ``host`` lets a caller (or a
    test) bring its own.

    >>> out = framestyle.stylize("photo.jpg", "starry.jpg", size=256, iterations=100)
    >>> out = framestyle.stylize("photo.jpg", ["a.jpg", "b.jpg"], style_weights=[0.7, 0.3],
    ...                          preserve_colors="luminance", preset="fast")
    """
    styles: list[ImageLike] = list(style) if isinstance(style, (list, tuple)) else [cast(ImageLike, style)]
    settings = resolve_settings(options, preset, config)
    host = host or PluginHost(plugins)
    validate(settings, host)  # the same checks as a run's, before any work
    runtime = Runtime(settings, weights, styles=[style_group(s) for s in styles])
    rgb = as_rgb8(content)
    height, width = rgb.shape[:2]
    _, tensor, size = runtime.prepare_content(rgb)
    info = SourceInfo(Path(str(content)) if isinstance(content, (str, os.PathLike)) else Path("<image>"),
                      "image", width, height, frame_count=1)
    context = PluginContext(runtime, host.hooks, host.hooks.on_step)
    job = FrameJob(info, 0, tensor, settings, context, iterations=settings.frame_iterations(False, False))
    result = host.hooks.stylize(job, host.hooks.init_image(job))
    return runtime.finish(result.image, tensor, size)


def run(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    style: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    plugins: Sequence[str] = (),
    host: PluginHost | None = None,
    weights: Weights | None = None,
    preset: str | None = None,
    config: str | os.PathLike | None = None,
    **options: Any,
) -> RunEnd:
    """Run a whole job as ``framestyle run`` does and return its summary.

    >>> summary = framestyle.run(["photos/"], "starry.jpg", "styled/", size=256)
    >>> summary.exit_code, summary.failed
    """
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    styles = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    options = {**options, "inputs": [Path(p) for p in inputs], "style": [Path(s) for s in styles],
               "output": Path(output)}
    settings = resolve_settings(options, preset, config)
    return Driver(settings, host or PluginHost(plugins), weights).run()


def resolve_settings(options: dict[str, Any], preset: str | None, config: str | os.PathLike | None) -> Settings:
    if preset is None and config is None:
        return Settings(**options)
    settings, _ = resolve(options, Path(config) if config is not None else None, preset, search=False)
    return settings


def style_group(style: ImageLike) -> list[np.ndarray]:
    """One style: an image, or the images of a folder."""
    if isinstance(style, (str, os.PathLike)) and Path(style).is_dir():
        return read_style(Path(style))
    return [as_rgb8(style)]
