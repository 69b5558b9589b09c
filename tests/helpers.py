"""Small helpers for tests: bundled sample images at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str, size: int) -> np.ndarray:
    """A bundled sample image resized so its long side is ``size``."""
    path = next(SAMPLES.rglob(name))
    image = Image.open(path).convert("RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image)


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path
