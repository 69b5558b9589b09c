"""Make the guide's pictures:

- docs/images/alpha.jpg: an RGBA sequence (the cat photo under a soft oval
  matte, 3 frames) stylised into ProRes 4444, its first frame decoded with
  its alpha and laid over a checkerboard beside the source's;
- docs/images/regions.jpg: the cat photo, its mask, and the photo with
  --style swirls and --region mask=mosaic.

    .venv/bin/python samples/make_guide_pictures.py      # about 2 minutes on 2 cores
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from framestyle.cli import main
from framestyle.media.encodings import ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent
SIZE = 192


def matte(width: int, height: int) -> np.ndarray:
    """An oval, opaque inside, fading to nothing over its last fifth."""
    y, x = np.mgrid[0:height, 0:width]
    r = np.hypot((x - width / 2) / (0.45 * width), (y - height / 2) / (0.45 * height))
    return (np.clip((1 - r) / 0.2, 0, 1) * 255).astype(np.uint8)


def over_checkerboard(rgba: np.ndarray) -> Image.Image:
    height, width = rgba.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    board = np.where(((x // 12 + y // 12) % 2)[..., None] == 0, 200, 120).astype(np.float32)
    alpha = rgba[..., 3:].astype(np.float32) / 255
    return Image.fromarray((rgba[..., :3] * alpha + board * (1 - alpha)).round().astype(np.uint8))


def decoded_rgba(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 4)


def alpha_picture() -> None:
    photo = Image.open(ROOT / "samples/photos/chelsea.jpg").convert("RGB")
    photo = photo.resize((SIZE, round(photo.height * SIZE / photo.width)), Image.Resampling.LANCZOS)
    rgba = np.dstack([np.asarray(photo), matte(photo.width, photo.height)])
    with tempfile.TemporaryDirectory() as folder:
        shot = Path(folder) / "shot"
        shot.mkdir()
        for n in range(1, 4):
            Image.fromarray(rgba).save(shot / f"cat_{n:04d}.png")
        out = Path(folder) / "out.mov"
        if main(["run", str(shot / "cat_####.png"), "--style", str(ROOT / "samples/styles/swirls.jpg"),
                 "-o", str(out), "--size", str(SIZE)]) != 0:
            raise SystemExit("the run failed")
        stylised = decoded_rgba(out, photo.width, photo.height)
    pair = [over_checkerboard(rgba), over_checkerboard(stylised)]
    picture = Image.new("RGB", (2 * photo.width + 4, photo.height), "white")
    picture.paste(pair[0], (0, 0))
    picture.paste(pair[1], (photo.width + 4, 0))
    target = ROOT / "docs/images/alpha.jpg"
    picture.save(target, quality=90)
    print(f"wrote {target}")


def regions_picture() -> None:
    photo = Image.open(ROOT / "samples/photos/chelsea.jpg").convert("RGB")
    photo = photo.resize((SIZE, round(photo.height * SIZE / photo.width)), Image.Resampling.LANCZOS)
    mask = np.zeros((photo.height, photo.width), np.uint8)
    mask[:, photo.width // 2:] = 255  # the right half
    with tempfile.TemporaryDirectory() as folder:
        mask_file, out = Path(folder) / "right.png", Path(folder) / "out.png"
        Image.fromarray(mask).save(mask_file)
        if main(["run", str(ROOT / "samples/photos/chelsea.jpg"), "--style", str(ROOT / "samples/styles/swirls.jpg"),
                 "--region", f"{mask_file}={ROOT / 'samples/styles/mosaic.jpg'}", "-o", str(out),
                 "--size", str(SIZE)]) != 0:
            raise SystemExit("the run failed")
        styled = Image.open(out).convert("RGB")
    parts = [photo, Image.fromarray(mask).convert("RGB"), styled]
    picture = Image.new("RGB", (3 * photo.width + 8, photo.height), "white")
    for n, part in enumerate(parts):
        picture.paste(part, (n * (photo.width + 4), 0))
    target = ROOT / "docs/images/regions.jpg"
    picture.save(target, quality=90)
    print(f"wrote {target}")


if __name__ == "__main__":
    alpha_picture()
    regions_picture()
