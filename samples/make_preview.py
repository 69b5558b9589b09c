"""Make docs/images/preview.jpg from what ``python3 dev.py samples`` wrote:
the four photos and three frames of the sample video (top), and the same
stylised (bottom), each scaled to one height.

    .venv/bin/python samples/make_preview.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HEIGHT = 160
GAP = 4
PHOTOS = ["chelsea", "coffee", "space/astronaut", "space/rocket"]


def frames(path: Path, picks: list[float]) -> list[Image.Image]:
    """Frames at ``picks`` (fractions of the video's length), as RGB images."""
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    found = []
    for pick in picks:
        capture.set(cv2.CAP_PROP_POS_FRAMES, min(count - 1, round(pick * (count - 1))))
        ok, bgr = capture.read()
        if not ok:
            raise SystemExit(f"{path}: cannot read frame at {pick:.0%}")
        found.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    capture.release()
    return found


def row(images: list[Image.Image]) -> Image.Image:
    scaled = [image.resize((round(image.width * HEIGHT / image.height), HEIGHT), Image.Resampling.LANCZOS)
              for image in images]
    strip = Image.new("RGB", (sum(i.width for i in scaled) + GAP * (len(scaled) - 1), HEIGHT), "white")
    x = 0
    for image in scaled:
        strip.paste(image, (x, 0))
        x += image.width + GAP
    return strip


def main() -> None:
    out = ROOT / "out" / "samples"
    picks = [0.1, 0.5, 0.9]
    sources = [Image.open(next((ROOT / "samples" / "photos").glob(f"{name}.*"))).convert("RGB") for name in PHOTOS]
    results = [Image.open(out / "photos" / f"{name}.png").convert("RGB") for name in PHOTOS]
    top = row(sources + frames(ROOT / "samples" / "video" / "bunny.mp4", picks))
    bottom = row(results + frames(out / "bunny.mp4", picks))
    sheet = Image.new("RGB", (max(top.width, bottom.width), 2 * HEIGHT + GAP), "white")
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, HEIGHT + GAP))
    target = ROOT / "docs" / "images" / "preview.jpg"
    sheet.save(target, quality=88)
    print(f"wrote {target} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
