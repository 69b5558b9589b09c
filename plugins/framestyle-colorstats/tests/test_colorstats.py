from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from framestyle.testing import run_with_plugin, tiny_image, tiny_weights

framestyle_colorstats = pytest.importorskip(
    "framestyle_colorstats", reason="install with: pip install -e plugins/framestyle-colorstats")


def colour_gap(image: np.ndarray, style: np.ndarray) -> float:
    a, b = image.reshape(-1, 3) / 255.0, style.reshape(-1, 3) / 255.0
    return float(np.abs(a.mean(0) - b.mean(0)).sum() + np.abs(a.std(0) - b.std(0)).sum())


def test_the_loss_pulls_colours_towards_the_style(tmp_path):
    content = tiny_image(tmp_path / "content.png")
    style = tmp_path / "style.png"
    Image.fromarray(np.full((32, 48, 3), (200, 40, 160), np.uint8)).save(style)  # a flat magenta
    outputs = {}
    for weight in (0.0, 100.0):
        out = tmp_path / f"out-{weight}.png"
        result = run_with_plugin(framestyle_colorstats, [content], out, style=style, weights=tiny_weights(),
                                 iterations=20, losses={"color-stats": weight})
        assert result.exit_code == 0
        outputs[weight] = np.asarray(Image.open(out))
    target = np.asarray(Image.open(style))
    assert colour_gap(outputs[100.0], target) < 0.5 * colour_gap(outputs[0.0], target)
