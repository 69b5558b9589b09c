"""Image decoding to RGB, atomic writes, folder discovery and naming."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from helpers import sample, save
from PIL import Image

from framestyle.engine.planning.inputs import find_inputs, natural_key
from framestyle.errors import InputError
from framestyle.media.images import (
    is_complete_image,
    partial_path,
    read_image,
    write_image_atomic,
)
from framestyle.settings import Settings


@pytest.fixture
def rgb() -> np.ndarray:
    return sample("coffee.jpg", 48)


def test_exif_orientation_is_applied(tmp_path, rgb):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    decoded = read_image(path)
    assert decoded.shape == (rgb.shape[1], rgb.shape[0], 3)
    expected = np.rot90(rgb, k=-1)
    assert np.abs(decoded.astype(int) - expected.astype(int)).mean() < 8


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_modes_are_brought_to_rgb(tmp_path, rgb, mode):
    image = Image.fromarray(rgb)
    if mode == "I;16":
        gray16 = (np.asarray(image.convert("L")).astype(np.uint16) * 257)
        image = Image.fromarray(gray16)
        assert image.mode in ("I;16", "I")
    else:
        image = image.convert(mode)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    image.save(path)
    decoded = read_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    if mode in ("L", "LA", "I;16"):
        gray = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
        assert np.abs(decoded[:, :, 0].astype(int) - gray).max() <= 1
    else:  # what Pillow itself shows for that image (palettes quantise colours)
        expected = np.asarray(image.convert("RGBA").convert("RGB")).astype(int)
        assert np.abs(decoded.astype(int) - expected).max() <= 1


def test_transparency_is_laid_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    save(tmp_path / "clear.png", rgba)
    assert (read_image(tmp_path / "clear.png") == 255).all()


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"),
    (b"hello, I am text", "not an image"),
])
def test_unreadable_files_give_one_line_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason):
        read_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images_fail_cleanly(tmp_path, rgb, fmt):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="damaged"):
        read_image(path)
    assert not is_complete_image(path)


def test_enormous_header_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(path)  # small file, 400 megapixels
    assert path.stat().st_size < 2_000_000
    with pytest.raises(InputError, match="decompression bomb|more than the limit"):
        read_image(path)


def test_atomic_write_leaves_nothing_behind_when_it_fails(tmp_path, rgb, monkeypatch):
    target = tmp_path / "out.png"
    write_image_atomic(target, rgb)
    before = target.read_bytes()

    def fail(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(OSError, match="No space"):
        write_image_atomic(target, rgb[::-1].copy())
    assert target.read_bytes() == before  # the old, complete file is untouched
    assert not partial_path(target).exists()


def test_natural_order():
    names = ["img10.png", "img2.png", "Img1.png", "img1b.png"]
    assert sorted(names, key=natural_key) == ["Img1.png", "img1b.png", "img2.png", "img10.png"]


def test_plan_walks_recursively_in_natural_order_and_skips_hidden(tmp_path, host):
    root = tmp_path / "in"
    for name in ["c.png", "b/frame10.png", "b/frame9.png", "a.png", ".hidden.png", ".cache/x.png", "notes.md"]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (root / "link").symlink_to(root / "b", target_is_directory=True)  # a symlinked folder is not entered
    result = find_inputs(Settings(inputs=[root], output=tmp_path / "out", format="webp"),
                  host.hooks.loaders(), host.hooks.writers())
    assert [i.path.relative_to(root).as_posix() for i in result.items] == [
        "a.png", "b/frame9.png", "b/frame10.png", "c.png"]  # a folder's files and subfolders by name
    assert [i.output.relative_to(tmp_path / "out").as_posix() for i in result.items] == [
        "a.webp", "b/frame9.webp", "b/frame10.webp", "c.webp"]
    assert [p.name for p in result.unclaimed] == ["notes.md"]


def test_paths_with_spaces_and_non_ascii(tmp_path, photos, weights, capsys):
    from framestyle.cli import main

    odd = photos / "Été à Paris" / "chat noir.jpg"
    save(odd, sample("chelsea.jpg", 32))
    code = main(["run", str(photos / "Été à Paris"), "--style", str(tmp_path / "style.jpg"),
                 "-o", str(tmp_path / "sortie été"), "--size", "24", "--iterations", "2"])
    assert code == 0
    assert (tmp_path / "sortie été" / "chat noir.png").is_file()


def test_import_framestyle_and_help_stay_light():
    code = ("import sys, framestyle, framestyle.cli, framestyle.types, framestyle.hookspecs; "
            "framestyle.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'cv2', 'rich', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
