"""Faults while running: a full disk, losses that overflow, devices that are
not there, inputs too large to decode. Each fails only what it must, with one
line, and never leaves a broken or blank output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW_ARGS, make_video, outputs, sample, save
from PIL import Image

import framestyle
from framestyle.cli import main
from framestyle.media.images import partial_path
from framestyle.media.video import read_video_info

FAST = ["--size", "32", "--iterations", "3", *SHALLOW_ARGS]


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any test reads the cache."""


def run(capsys, *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("framestyle: error:")]


def fill_disk_for(target: Path) -> None:
    """Make writing ``target`` hit a full disk for real: the hidden file it is
    written to first is a link to /dev/full, where every write fails with
    ENOSPC, as on a full file system."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", partial_path(target))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to fail writes")
def test_full_disk_fails_that_output_and_keeps_the_others(photos, tmp_path, capsys):
    out = tmp_path / "out"
    fill_disk_for(out / "cat.png")
    code, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST)
    assert code == 1
    [line] = errors(err)
    assert f"cannot write {out / 'cat.png'}: No space left on device" in line
    assert not (out / "cat.png").exists() and not os.path.lexists(partial_path(out / "cat.png"))
    assert Image.open(out / "space" / "rocket.png").size[0] == 32  # the other one is done
    code, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST)
    assert code == 0 and "1 done" in err and "1 skipped" in err  # space again: the rerun finishes it


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to fail writes")
def test_full_disk_while_encoding_a_video_keeps_its_finished_frames(tmp_path, capsys):
    clip = make_video(tmp_path / "clip.mp4", frames=5, audio=False)
    save(tmp_path / "style.png", sample("swirls.jpg", 40))
    out = tmp_path / "out.mp4"
    os.symlink("/dev/full", partial_path(out))
    args = ["run", clip, "--style", tmp_path / "style.png", "-o", out, *FAST, "--min-iterations", "1"]
    code, err = run(capsys, *args)
    assert code == 1
    [line] = errors(err)
    assert f"cannot write {out}" in line and "No space left on device" in line
    assert not out.exists()
    code, err = run(capsys, *args)  # the link is gone with the failed file: now it fits
    # ffmpeg fails when it first writes; the frames finished by then are kept and reused
    assert code == 0 and "resuming after frame " in err and read_video_info(out)[0] == 5


def test_overflowing_loss_is_retried_with_safe_settings(photos, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, err = run(capsys, "run", photos / "cat.jpg", "--style", tmp_path / "style.jpg", "-o", out,
                    *FAST, "--style-weight", "1e39")
    assert code == 0
    assert "the loss became inf at iteration 1; retrying with the loss weights scaled" in err
    result = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    with Image.open(photos / "cat.jpg") as photo:
        content = np.asarray(photo.convert("RGB").resize(result.shape[1::-1], Image.LANCZOS), dtype=float)
    assert result.std() > 5  # a picture, not a black or flat image
    # and optimised again, not the content as it started (7.6 from it against 0.5 unoptimised, 3 iterations)
    assert np.abs(result - content).mean() > 3


def test_loss_that_stays_nan_fails_clearly_and_writes_nothing(photos, tmp_path, capsys):
    nan_loss = tmp_path / "nan_loss.py"
    nan_loss.write_text(
        "import torch\n"
        "from framestyle import hookimpl\n"
        "from framestyle.types import LossSpec\n"
        "class Nan:\n"
        "    layers = ()\n"
        "    def __call__(self, image, features):\n"
        "        return image.sum() * float('nan')\n"
        "@hookimpl\n"
        "def register_losses(register):\n"
        "    register(LossSpec('nan', lambda job: Nan(), default_weight=0.0))\n"
    )
    out = tmp_path / "out"
    code, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST,
                    "-p", nan_loss, "--loss", "nan=1")
    assert code == 1
    lines = errors(err)
    assert len(lines) == 2 and all("the loss became nan" in line and "nothing was written" in line for line in lines)
    assert outputs(out) == []


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps", "tpu"])
def test_absent_device_is_a_usage_error(photos, tmp_path, capsys, device):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "o",
                    "--device", device)
    assert code == 2 and len(errors(err)) == 1 and f"--device {device}" in err
    assert not (tmp_path / "o").exists()


def test_max_pixels_refuses_large_inputs_before_decoding(photos, tmp_path, capsys):
    big = save(tmp_path / "big" / "big.png", sample("coffee.jpg", 400))
    save(tmp_path / "big" / "small.png", sample("coffee.jpg", 40))
    video = make_video(tmp_path / "big" / "wide.mp4", frames=2, width=96, height=64, audio=False)
    code, err = run(capsys, "run", tmp_path / "big", "--style", tmp_path / "style.jpg", "-o", tmp_path / "o",
                    *FAST, "--max-pixels", "4000", "--min-iterations", "1")
    assert code == 1
    width, height = Image.open(big).size
    assert f"big.png: it is {width}x{height} pixels, more than the limit of 4,000" in err
    assert f"{video}: its frames are 96x64 pixels, more than the limit of 4,000" in err
    assert (tmp_path / "o" / "small.png").is_file() and not (tmp_path / "o" / "big.png").exists()


@pytest.mark.parametrize("option,value,message", [
    ("--size", 100000, "--size 100000: a 100000x100000 image is more than --max-pixels"),
    ("--scales", 99999999999, "--scales must be from 1 to 12"),
    ("--style-scale", 50.0, "--style-scale 50.0: must be between 0.1 and 4"),
])
def test_absurd_values_are_refused_before_any_work(photos, tmp_path, capsys, option, value, message):
    code, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "o", option, value)
    assert code == 2 and message in err
    keyword = option[2:].replace("-", "_")
    with pytest.raises(framestyle.errors.UsageError) as raised:  # the API checks the same
        framestyle.stylize(photos / "cat.jpg", tmp_path / "style.jpg", **{keyword: value})
    assert message in str(raised.value)


def test_inputs_larger_than_size_are_optimised_at_size(tmp_path, weights):
    from framestyle import hookimpl
    from framestyle.testing import run_with_plugin

    class Recorder:
        shapes: list[tuple[int, ...]] = []

        @hookimpl(tryfirst=True)
        def init_image(self, job):
            self.shapes.append(tuple(job.content.shape))  # returns None: the built-in still decides

    big = save(tmp_path / "big.png", sample("coffee.jpg", 400))
    recorder = Recorder()
    result = run_with_plugin(recorder, [big], tmp_path / "o.png", weights=weights, size=64, iterations=1)
    width, height = Image.open(big).size
    assert result.exit_code == 0 and recorder.shapes == [(1, 3, round(height * 64 / width), 64)]
