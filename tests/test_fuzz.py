"""Property-based tests: no input file and no command line makes framestyle
crash. Every failure is a clean error: InputError for a file, a one-line
message and exit code for a command."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import sample
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from framestyle.errors import InputError
from framestyle.media.images import image_size, read_image


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(sample("coffee.jpg", 24))
    image.save(buffer, format=fmt, **({"exif": b"Exif\0\0" + b"MM\0*" + bytes(8)} if fmt == "JPEG" else {}))
    return buffer.getvalue()


VALID = {fmt: encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")}


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    """A real encoded image with bytes overwritten, cut, or inserted; or noise."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=2000))
    data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position: position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


@pytest.mark.filterwarnings("error")  # Pillow's warnings about damaged files must not reach the user
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_images(), suffix=st.sampled_from([".png", ".jpg", ".webp", ".bmp", ".tif", ".gif"]))
def test_image_loader_returns_rgb_or_a_clean_error(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(data)
        try:
            width, height = image_size(path, max_pixels=1_000_000)
            rgb = read_image(path, max_pixels=1_000_000)
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert rgb.shape[:2] == (height, width)


NUMBERS = st.sampled_from(["0", "1", "2", "-1", "16", "1e3", "abc", "", "nan", "inf", "99999999999", "0x10"])
FLOATS = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e308", "-1", "0", "x", ""]),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20)
OPTIONS = {
    "--size": NUMBERS, "--iterations": st.sampled_from(["0", "1", "2", "-1", "x", ""]),
    "--first-iterations": st.sampled_from(["0", "1", "x"]), "--min-iterations": NUMBERS,
    "--tolerance": FLOATS, "--content-weight": FLOATS, "--style-weight": FLOATS, "--tv-weight": FLOATS,
    "--temporal-weight": FLOATS, "--lr": FLOATS, "--seed": NUMBERS, "--max-pixels": NUMBERS,
    "--optimizer": st.one_of(st.sampled_from(["lbfgs", "adam", "sgd"]), TEXT),
    "--device": st.one_of(st.sampled_from(["cpu", "auto", "cuda", "cuda:7", "mps", "cpu:1", "meta"]), TEXT),
    "--init": st.one_of(st.sampled_from(["content", "noise", "missing.png"]), TEXT),
    "--loss": st.one_of(st.sampled_from(["tv=0.1", "temporal=1", "nope=1", "tv=", "=1", "tv=nan"]), TEXT),
    "--content-layer": st.one_of(st.sampled_from(["relu4_2", "conv1_1", "pool5", "relu9_9"]), TEXT),
    "--style-layers": st.one_of(st.sampled_from(["relu1_1:1", "relu1_1:x", "relu2_1,relu3_1:0.5", ","]), TEXT),
    "--pooling": st.sampled_from(["max", "avg", "min"]),
    "--format": st.one_of(st.sampled_from(["png", "jpg", "webp", "gif", ".tiff", "PNG"]), TEXT),
    "--video-format": st.sampled_from(["mp4", "avi", "frames"]),
    "--writer": st.sampled_from(["image", "mp4", "frames", "nope"]),
    "--loader": st.sampled_from(["image", "video", "nope"]),
    "-p": st.sampled_from(["no:progress", "no:nothing", "framestyle_missing_plugin", "missing.py"]),
    "--preserve-colors": st.sampled_from(["luminance", "histogram", "none", "rgb", ""]),
    "--style-weights": st.one_of(st.sampled_from(["1", "0.7,0.3", "0", "-1", "nan", "1,,2", ""]), TEXT),
    "--style-scale": FLOATS, "--final-share": FLOATS, "--scales": NUMBERS, "--preview": NUMBERS,
    "--preset": st.sampled_from(["fast", "balanced", "quality", "best"]),
    "--precision": st.sampled_from(["auto", "fp32", "bf16", "fp16", "fp64"]),
    "--config": st.sampled_from(["missing.toml", "pyproject.toml", "/dev/null"]),
}
FLAGS = ["--overwrite", "-x", "--no-warm-start", "-q", "-v"]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    argv: list[str] = []
    for option in draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=5)):
        argv += [option, draw(OPTIONS[option])]
    argv += draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True))
    return argv


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, weights) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    Image.fromarray(sample("chelsea.jpg", 16)).save(root / "in.png")
    Image.fromarray(sample("swirls.jpg", 16)).save(root / "style.png")
    return root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(options=command_lines())
def test_no_command_line_crashes(inputs, options, capsys):
    from framestyle.cli import main

    with tempfile.TemporaryDirectory() as folder:
        argv = ["run", str(inputs / "in.png"), "--style", str(inputs / "style.png"), "-o",
                str(Path(folder) / "out.png"), "--iterations", "1", *options]
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse's own usage errors
            code = exit.code
        err = capsys.readouterr().err
        written = (Path(folder) / "out.png").exists()  # a folder with --writer frames
    event(f"exit code {code}")
    assert code in (0, 1, 2, 3), (argv, err)
    assert written == (code == 0), (argv, err)
    assert "Traceback" not in err or "-v" in options, (argv, err)
    if code:
        assert any(line.startswith(("framestyle: error:", "usage:")) for line in err.splitlines()), (argv, err)
