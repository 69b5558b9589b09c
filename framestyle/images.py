"""Reading, resizing and atomically writing still images (Pillow, numpy)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from framestyle.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# Larger images are refused before their pixels are decoded (decompression
# bombs); Pillow itself refuses more than twice its MAX_IMAGE_PIXELS.
MAX_PIXELS = 178_956_970
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
               ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def to_rgb8(image: Image.Image) -> np.ndarray:
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InputError(f"{width}x{height} pixels is more than the limit of {max_pixels}")
                image.load()
                image = ImageOps.exif_transpose(image) or image
                return to_rgb8(image)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("no such file") from None
    except PermissionError:
        raise InputError("permission denied") from None
    except IsADirectoryError:
        raise InputError("is a folder") from None
    except UnidentifiedImageError:
        size = path.stat().st_size if path.exists() else 0
        reason = "empty file" if size == 0 else "not an image Pillow can read"
        raise InputError(reason) from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"refused as a possible decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InputError(f"damaged image ({exc})") from None


def fit_long_side(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled down so the long side is at most ``size``."""
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """High-quality (Lanczos) resize of an RGB array."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def partial_path(target: Path) -> Path:
    """Where an output is written before it is renamed into place. Hidden, and
    with no image extension, so folder scans never mistake it for an input."""
    return target.with_name(f".{target.name}.framestyle-partial")


def write_image_atomic(target: Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` to ``target``: a temporary file, fsync, then rename, so
    ``target`` is either absent, the old file, or the complete new one."""
    fmt = PIL_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InputError(f"{target}: cannot write images with extension {target.suffix!r}")
    options = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}.get(fmt, {})
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    try:
        with open(partial, "wb") as f:
            Image.fromarray(rgb).save(f, format=fmt, **options)
            f.flush()
            os.fsync(f.fileno())
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
