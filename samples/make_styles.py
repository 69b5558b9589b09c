"""Paint the two sample style images procedurally (numpy + Pillow only).

    python samples/make_styles.py        # rewrites samples/styles/*.jpg

swirls.jpg: brush strokes that follow a field of vortices, in night-sky blues
and yellows (line integral convolution of coarse noise along the field).
mosaic.jpg: Voronoi tiles in saturated colours with dark grout.
Both are original works made for framestyle and dedicated to the public domain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIZE = 512
HERE = Path(__file__).parent / "styles"


def vortex_field(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) / n
    vx = 0.6 + 0.3 * np.sin(6 * y + 2 * np.sin(3 * x))  # a wavy wind to the right
    vy = 0.25 * np.cos(5 * x + 1.5)
    for _ in range(7):
        cx, cy, radius = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.2)
        spin = rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0)
        dx, dy = x - cx, y - cy
        falloff = np.exp(-(dx**2 + dy**2) / (2 * radius**2))
        vx += -spin * dy / radius * falloff
        vy += spin * dx / radius * falloff
    norm = np.hypot(vx, vy) + 1e-9
    return vx / norm, vy / norm


def line_integral(noise: np.ndarray, vx: np.ndarray, vy: np.ndarray, length: int = 18) -> np.ndarray:
    n = noise.shape[0]
    total = noise.copy()
    for direction in (1.0, -1.0):
        py, px = np.mgrid[0:n, 0:n].astype(np.float64)
        for _ in range(length):
            iy, ix = np.clip(py.round().astype(int), 0, n - 1), np.clip(px.round().astype(int), 0, n - 1)
            px += direction * vx[iy, ix]
            py += direction * vy[iy, ix]
            iy, ix = np.clip(py.round().astype(int), 0, n - 1), np.clip(px.round().astype(int), 0, n - 1)
            total += noise[iy, ix]
    return total / (2 * length + 1)


def swirls(rng: np.random.Generator) -> Image.Image:
    n = SIZE
    vx, vy = vortex_field(rng, n)
    coarse = rng.random((n // 3, n // 3))
    noise = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((n, n), Image.NEAREST)) / 255.0
    strokes = line_integral(noise, vx, vy)
    strokes = (strokes - strokes.min()) / (np.ptp(strokes) + 1e-9)
    y, x = np.mgrid[0:n, 0:n] / n
    glow = 0.55 * np.sin(4 * x + 3 * y) * np.cos(3 * x - 2 * y)  # large light and dark areas
    tone = np.clip(0.35 + 0.9 * (strokes - 0.5) + glow, 0, 1)
    palette = np.array([[12, 24, 64], [30, 70, 150], [80, 130, 200], [170, 190, 170],
                        [240, 210, 90], [250, 240, 190]], dtype=np.float64)
    scaled = tone * (len(palette) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(palette) - 2)
    frac = (scaled - low)[..., None]
    rgb = palette[low] * (1 - frac) + palette[low + 1] * frac
    for _ in range(9):  # stars: bright discs with rings of strokes
        cx, cy, r = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.55), rng.uniform(0.015, 0.04)
        d = np.hypot(x - cx, y - cy)
        halo = np.exp(-((d - 2 * r) ** 2) / (2 * (0.4 * r) ** 2)) * (0.6 + 0.4 * strokes)
        core = (d < r).astype(np.float64)
        rgb = rgb * (1 - core[..., None]) + np.array([255, 245, 170]) * core[..., None]
        rgb += halo[..., None] * np.array([120, 110, 30])
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def mosaic(rng: np.random.Generator) -> Image.Image:
    n = SIZE
    seeds = rng.uniform(0, n, size=(260, 2))
    colours = rng.choice(
        np.array([[200, 40, 40], [240, 170, 30], [30, 110, 180], [40, 150, 90],
                  [230, 220, 200], [120, 60, 140], [20, 40, 90]]), size=len(seeds))
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    points = np.stack([y.ravel(), x.ravel()], axis=1)
    best = np.full(len(points), np.inf)
    second = np.full(len(points), np.inf)
    owner = np.zeros(len(points), dtype=int)
    for i, seed in enumerate(seeds):
        d = np.hypot(points[:, 0] - seed[0], points[:, 1] - seed[1])
        closer = d < best
        second = np.where(closer, best, np.minimum(second, d))
        owner = np.where(closer, i, owner)
        best = np.where(closer, d, best)
    shade = 0.8 + 0.2 * np.cos(best / 9.0)
    rgb = colours[owner] * shade[:, None]
    grout = (second - best) < 2.5
    rgb[grout] = [35, 30, 28]
    return Image.fromarray(np.clip(rgb, 0, 255).reshape(n, n, 3).astype(np.uint8))


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    swirls(np.random.default_rng(7)).save(HERE / "swirls.jpg", quality=92)
    mosaic(np.random.default_rng(11)).save(HERE / "mosaic.jpg", quality=92)
    print("wrote", *sorted(p.name for p in HERE.glob("*.jpg")))
