"""Make the guide's pictures:

- docs/images/alpha.jpg: an RGBA sequence (the cat photo under a soft oval
  matte, 3 frames) stylised into ProRes 4444, its first frame decoded with
  its alpha and laid over a checkerboard beside the source's;
- docs/images/regions.jpg: the cat photo, its mask, and the photo with
  --style swirls and --region mask=mosaic;
- docs/images/colours.jpg: the coffee photo stylised with the defaults,
  --preserve-colors, --color-only and --loss histogram=20;
- docs/images/schedule.jpg: frames 1, 4, 7, 10, 13 of the sample video with
  mosaic.jpg fading in from frame 4 over 8 frames (--style-at 4=mosaic.jpg);
- docs/images/follow.jpg: frames 1, 6 and 12 of a pan across the cat photo,
  the mask drawn on the first frame around an eye (outlined where
  --region-follow carried it), above the same frames stylised with swirls
  and, in the region, mosaic.

    .venv/bin/python samples/make_guide_pictures.py [alpha regions colours schedule follow]   # ~11 min on 2 cores
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


def stylised(source: Path, folder: Path, name: str, *options: str) -> Path:
    out = folder / name
    if main(["run", str(source), "--style", str(ROOT / "samples/styles/swirls.jpg"), "-o", str(out),
             "--size", str(SIZE), *options]) != 0:
        raise SystemExit(f"the run for {name} failed")
    return out


def strip(images: list[Image.Image], target: Path) -> None:
    height = min(image.height for image in images)
    scaled = [image.resize((round(image.width * height / image.height), height)) for image in images]
    picture = Image.new("RGB", (sum(i.width for i in scaled) + 4 * (len(scaled) - 1), height), "white")
    x = 0
    for image in scaled:
        picture.paste(image, (x, 0))
        x += image.width + 4
    picture.save(target, quality=90)
    print(f"wrote {target}")


def colours_picture() -> None:
    photo = ROOT / "samples/photos/coffee.jpg"
    with tempfile.TemporaryDirectory() as folder:
        runs = [stylised(photo, Path(folder), "default.png"),
                stylised(photo, Path(folder), "preserve.png", "--preserve-colors"),
                stylised(photo, Path(folder), "colour-only.png", "--color-only"),
                stylised(photo, Path(folder), "histogram.png", "--loss", "histogram=20")]
        images = [Image.open(photo).convert("RGB"), *(Image.open(run).convert("RGB") for run in runs)]
        strip(images, ROOT / "docs/images/colours.jpg")


def schedule_picture() -> None:
    import cv2

    with tempfile.TemporaryDirectory() as folder:
        out = stylised(ROOT / "samples/video/bunny.mp4", Path(folder), "faded.mp4",
                       "--style-at", f"4={ROOT / 'samples/styles/mosaic.jpg'}", "--style-fade", "8")
        capture = cv2.VideoCapture(str(out))
        frames = []
        for index in range(13):
            ok, bgr = capture.read()
            if ok and index in (0, 3, 6, 9, 12):
                frames.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        capture.release()
    strip(frames, ROOT / "docs/images/schedule.jpg")


def follow_picture() -> None:
    import cv2

    from framestyle.engine.regions import FollowedMask, StillMask
    from framestyle.media.motion import estimate

    photo = Image.open(ROOT / "samples/photos/chelsea.jpg").convert("RGB")
    photo = np.asarray(photo.resize((320, round(photo.height * 320 / photo.width)), Image.Resampling.LANCZOS))
    frames = [np.ascontiguousarray(photo[30:174, 40 + 4 * t: 232 + 4 * t]) for t in range(12)]  # a pan, 4 px a frame
    y, x = np.mgrid[0:144, 0:192]
    eye = (np.clip(30.5 - np.hypot(x - 81, (y - 51) * 1.3), 0, 1) * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        shot, out, mask_file = Path(folder) / "shot", Path(folder) / "out", Path(folder) / "eye.png"
        shot.mkdir()
        for n, frame in enumerate(frames, 1):
            Image.fromarray(frame).save(shot / f"pan_{n:04d}.png")
        Image.fromarray(eye).save(mask_file)
        if main(["run", str(shot / "pan_%04d.png"), "--style", str(ROOT / "samples/styles/swirls.jpg"),
                 "--region", f"{mask_file}={ROOT / 'samples/styles/mosaic.jpg'}", "--region-follow",
                 "-o", str(out / "%04d.png"), "--size", "192"]) != 0:
            raise SystemExit("the run failed")
        follower = FollowedMask(StillMask(mask_file), shot, lambda: iter(frames), estimate)
        shown = (0, 5, 11)
        masks = {t: follower.at(t, 192, 144, None) for t in shown}
        outlined = []
        for t in shown:
            edge = cv2.morphologyEx((masks[t] > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
            picture = frames[t].copy()
            picture[edge > 0] = (255, 40, 40)
            outlined.append(Image.fromarray(picture))
        styled = [Image.open(out / f"{t + 1:04d}.png").convert("RGB") for t in shown]
    grid = Image.new("RGB", (3 * 192 + 8, 2 * 144 + 4), "white")
    for n, (top, bottom) in enumerate(zip(outlined, styled, strict=True)):
        grid.paste(top, (n * 196, 0))
        grid.paste(bottom, (n * 196, 148))
    target = ROOT / "docs/images/follow.jpg"
    grid.save(target, quality=90)
    print(f"wrote {target}")


PICTURES = {"alpha": alpha_picture, "regions": regions_picture, "colours": colours_picture,
            "schedule": schedule_picture, "follow": follow_picture}

if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or list(PICTURES):
        PICTURES[name]()
