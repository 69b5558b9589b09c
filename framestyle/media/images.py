"""Reading, resizing and atomically writing still images (Pillow, numpy)."""

from __future__ import annotations

import glob
import os
import re
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from framestyle.errors import InputError, read_error
from framestyle.settings import MAX_PIXELS, Settings

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
               ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
DEEP_FORMATS = ("PNG", "TIFF")  # those that hold 16 bits a channel (--bit-depth 16)


def pil_to_rgb8(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to HxWx3 uint8 RGB; transparency is laid on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to HxWx3 uint8 RGB with EXIF orientation applied.

    Raises :class:`InputError` with a one-line reason (without the path) for
    anything unreadable.
    """
    with quiet_pillow(), open_image(path, max_pixels) as image:
        try:
            image.load()
            return pil_to_rgb8(ImageOps.exif_transpose(image) or image)
        except Exception as exc:
            raise image_error(exc, path) from None


def image_size(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as the header says, upright; nothing is decoded."""
    with quiet_pillow(), open_image(path, max_pixels) as image:
        width, height = image.size
        try:
            orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation: 5-8 turn by 90 degrees
        except Exception:  # damaged EXIF: decoding will tell whether the pixels are usable
            orientation = 1
        return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


@contextmanager
def quiet_pillow() -> Iterator[None]:
    """Pillow warns (multi-line, on stderr) about damaged metadata it skips;
    framestyle reports what matters itself: whether the pixels decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def open_image(path: Path, max_pixels: int) -> Image.Image:
    """Pillow's lazy image (header read, pixels not yet decoded), refused when
    it claims more than ``max_pixels``."""
    try:
        image = Image.open(path)
    except Exception as exc:
        raise image_error(exc, path) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise InputError(f"its header claims {width}x{height} pixels, more than the limit of {max_pixels:,} "
                         "(--max-pixels); not decoded")
    return image


def image_error(exc: BaseException, path: Path) -> InputError:
    """One line, without the path, saying why an image could not be read."""
    if isinstance(exc, InputError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:  # from the OS, not from a decoder
        return read_error(exc)
    if isinstance(exc, UnidentifiedImageError):
        empty = path.is_file() and path.stat().st_size == 0
        return InputError("empty file" if empty else "not an image Pillow can read")
    if isinstance(exc, Image.DecompressionBombError):
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(claimed.group(1)):,} pixels" if claimed else "too many pixels"
        return InputError(f"its header claims {pixels}, more than the limit of {MAX_PIXELS:,} "
                          "(a possible decompression bomb); not decoded")
    if isinstance(exc, MemoryError):
        return InputError("not enough memory to decode it")
    # Pillow reports truncated and corrupt data with many exception types.
    return InputError(f"damaged image ({type(exc).__name__}: {exc})")


def fit_long_side(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled down so the long side is at most ``size``."""
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """High-quality (Lanczos) resize of an RGB array, 8 or 16 bits."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    if rgb.dtype == np.uint16:  # Pillow has no 16-bit RGB
        import cv2

        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LANCZOS4)
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """An HxW float mask at ``width`` x ``height``, area-averaged (a hard
    edge stays as soft as the pixels make it)."""
    if mask.shape == (height, width):
        return mask
    import cv2

    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)


def full_scale(frame: np.ndarray) -> float:
    """The value of white in ``frame``: 65535 for 16 bits, else 255."""
    return 65535.0 if frame.dtype == np.uint16 else 255.0


def read_frame(path: Path) -> np.ndarray:
    """A frame framestyle wrote (a kept PNG), at its own depth: HxWx3 RGB,
    uint8 or uint16."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.ndim != 3:
        raise InputError(f"{path}: not a frame framestyle kept")
    return np.ascontiguousarray(bgr[..., 2::-1])


def partial_path(target: Path) -> Path:
    """Where an output is written before it is renamed into place. Hidden, and
    with no image extension, so folder scans never mistake it for an input.
    Named for this host and process: on shared storage a unit that a cluster
    runs again elsewhere never writes into the file of a worker it took for
    dead and that is still writing."""
    return target.with_name(f".{target.name}.{socket.gethostname()}-{os.getpid()}.framestyle-partial")


def drop_stale_partials(target: Path) -> None:
    """Once ``target`` is complete, the partial files of it that killed
    processes left are garbage; a process still writing one would only
    replace the complete file with its own."""
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.framestyle-partial"):
        stale.unlink(missing_ok=True)


def preview_path(output: Path) -> Path:
    """Where ``--preview`` writes an image's current result: ``cat.png`` ->
    ``cat.preview.png``, beside the output, removed once the output is done."""
    return output.with_name(f"{output.stem}.preview{output.suffix}")


def deep_images(settings: Settings) -> str | None:
    """A writer's check: the image formats the run writes hold ``--bit-depth``."""
    if settings.bit_depth == 8:
        return None
    suffixes = {"." + settings.format.lower().lstrip(".")}
    if settings.output is not None and settings.output.suffix.lower() in PIL_FORMATS:
        suffixes = {settings.output.suffix.lower()}
    shallow = sorted(s for s in suffixes if PIL_FORMATS.get(s) not in DEEP_FORMATS)
    if shallow:
        return f"--bit-depth {settings.bit_depth}: {', '.join(shallow)} files have 8 bits a channel; write .png or .tif"
    return None


def write_image_atomic(target: Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` to ``target``: a temporary file, fsync, then rename, so
    ``target`` is either absent, the old file, or the complete new one."""
    fmt = PIL_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InputError(f"{target}: cannot write images with extension {target.suffix!r}")
    if rgb.dtype == np.uint16 and fmt not in DEEP_FORMATS:
        raise InputError(f"{target}: {fmt} has no 16-bit colour (--bit-depth 16 writes PNG or TIFF)")
    options = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}.get(fmt, {})
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    try:
        with open(partial, "wb") as f:
            if rgb.dtype == np.uint16:  # Pillow writes no 16-bit RGB; OpenCV does, as BGR
                import cv2

                f.write(cv2.imencode(target.suffix.lower(), np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes())
            else:
                Image.fromarray(rgb).save(f, format=fmt, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text_atomic(target: Path, text: str) -> None:
    """Write a text file (a report, a record, a marker) the same way as an
    image: a hidden partial file renamed into place once complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def is_complete_image(path: Path) -> bool:
    """True when ``path`` is a whole, decodable image (a finished output)."""
    if not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:
        return False
