"""The edges of a stylised image: no line along them, as textured as the inside."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import sample

import framestyle
from framestyle.host import PluginHost

# One worker: the stylised images are a module fixture, made once (~12 s on 2 cores).
pytestmark = pytest.mark.xdist_group("borders")


def middle(name: str, width: int, height: int) -> np.ndarray:
    """The middle of a sample photo: a crop, so its edges are picture like its inside."""
    photo = sample(name, 2 * width)
    top, left = (photo.shape[0] - height) // 2, (photo.shape[1] - width) // 2
    return np.ascontiguousarray(photo[top:top + height, left:left + width])


def edge_ratios(rgb: np.ndarray, inside: int = 8) -> tuple[float, float]:
    """Over the four edges: the step from the outermost row (or column) to the
    next, and the texture along it (mean neighbour difference), each as a
    share of the same measure over the rows ``inside`` or more from the edges.
    A line along the edge shows as a step above 1, a flat edge as texture below 1."""
    image = rgb.astype(np.float64)
    steps, textures = [], []
    for view in (image, image[::-1], image.transpose(1, 0, 2), image.transpose(1, 0, 2)[::-1]):
        across = np.abs(np.diff(view, axis=0)).mean(axis=(1, 2))
        along = np.abs(np.diff(view, axis=1)).mean(axis=(1, 2))
        steps.append(across[0] / across[inside:-inside].mean())
        textures.append(along[0] / along[inside:-inside].mean())
    return float(np.mean(steps)), float(np.mean(textures))


@pytest.fixture(scope="module")
def stylised(weights):
    """Two photos' middles with each of the two sample styles (default
    layers, 60 iterations, 64×42 px), keyed by style."""
    results: dict[str, list[np.ndarray]] = {}
    for style in ("swirls.jpg", "mosaic.jpg"):
        results[style] = [framestyle.stylize(middle(photo, 64, 42), sample(style, 256), size=64, iterations=60,
                                             weights=weights, host=PluginHost(autoload=False))
                          for photo in ("chelsea.jpg", "coffee.jpg")]
    return results


def test_no_line_along_the_edges(stylised):
    """With VGG-19's zero padding alone (``--margin 0``), swirls draws a line
    along the edges: the step from the outermost row to the next is 1.5–1.9×
    the inside's row-to-row step, against 0.7–0.9× with the default margin
    (both CPU kinds' rounding)."""
    steps = [edge_ratios(image)[0] for image in stylised["swirls.jpg"]]
    assert max(steps) < 1.2, steps


def test_edges_as_textured_as_the_inside(stylised):
    """With zero padding alone, mosaic's outermost rows carry 0.79–0.84 of
    the inside's texture (mean of the two photos); with the default margin
    0.99–1.02 (both CPU kinds' rounding)."""
    textures = [edge_ratios(image)[1] for image in stylised["mosaic.jpg"]]
    assert np.mean(textures) > 0.92, textures


def test_a_warm_frames_margin_is_held_to_where_it_starts():
    """On the canvas the previous frame, the flow and its mask are mirrored
    so that the temporal loss's target in the margin is the warped previous
    frame mirrored, which is where the margin starts: carried out unmirrored,
    the flow of a pan points the wrong way beside the image (4 levels off here)."""
    import cv2

    from framestyle.media.motion import warp
    from framestyle.transfer.margin import widen_array, widen_flow

    previous = cv2.GaussianBlur(sample("chelsea.jpg", 64), (7, 7), 2)
    flow = np.zeros((*previous.shape[:2], 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.7, -0.8  # a pan
    target = warp(widen_array(previous, 8), widen_flow(flow, 8)).astype(float)
    start = widen_array(warp(previous, flow), 8).astype(float)
    assert np.abs(target - start).mean() < 0.5
    # Inside, the frame's own warp to a level (OpenCV's fixed-point remap), but for the
    # pixels whose samples fall past its edge.
    assert np.abs(target - start)[11:-11, 11:-11].max() <= 1
