"""The bad-input matrix: a messy folder of images and a folder of damaged
videos. Every good file is stylised, every bad one gets exactly one line
naming it and the problem, and the run ends with exit code 1 and a summary."""

from __future__ import annotations

import builtins
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW_ARGS, make_video, outputs, sample, save, stream_seconds
from PIL import Image

from framestyle.cli import main
from framestyle.media.video import read_video_info

FAST = ["--size", "32", "--iterations", "2", *SHALLOW_ARGS]


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any test reads the cache."""


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("framestyle: error:")]


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def make_messy_folder(root: Path) -> tuple[dict[str, str], list[str]]:
    """Bad files (name -> the reason the user must see) and good files that
    must work although they are unusual."""
    photo = sample("chelsea.jpg", 40)
    good = []

    def keep(name: str, image: Image.Image, **options: object) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name, **options)
        good.append(name)

    rgb = Image.fromarray(photo)
    keep("plain.jpg", rgb)
    keep("gray.png", rgb.convert("L"))
    keep("alpha.png", rgb.convert("RGBA"))
    keep("palette.png", rgb.convert("P"))
    keep("cmyk.jpg", rgb.convert("CMYK"))
    keep("sixteen.png", Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: the reader must turn it upright
    keep("rotated.jpg", rgb, exif=exif)
    keep("with space/ünïcødé name.png", rgb)

    bad = {}

    def spoil(name: str, data: bytes, reason: str) -> None:
        (root / name).write_bytes(data)
        bad[name] = reason

    encoded = (root / "plain.jpg").read_bytes()
    spoil("empty.jpg", b"", "empty file")
    spoil("text.png", b"this is a text file, not a picture\n", "not an image Pillow can read")
    spoil("random.jpg", np.random.default_rng(0).bytes(3000), "not an image Pillow can read")
    spoil("truncated.jpg", encoded[: len(encoded) // 2], "damaged image")
    png = (root / "gray.png").read_bytes()
    spoil("truncated.png", png[: len(png) // 2], "damaged image")
    spoil("bomb.png", png_claiming(100_000, 100_000), "header claims 10,000,000,000 pixels, more than the limit")
    spoil("locked.png", png, "permission denied")
    os.chmod(root / "locked.png", 0)
    os.symlink("loop-b.jpg", root / "loop-a.jpg")
    os.symlink("loop-a.jpg", root / "loop-b.jpg")
    bad["loop-a.jpg"] = bad["loop-b.jpg"] = "symbolic link loop"
    os.symlink("..", root / "with space" / "parent")  # a folder loop: never followed
    return bad, good


@pytest.fixture
def unreadable_as_root(monkeypatch):
    """Root reads any file whatever its mode; for root, make opening a file
    with no read permission fail as the kernel does for everyone else."""
    if os.geteuid() != 0:
        return
    real_open = builtins.open

    def open_like_a_user(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.exists(file) and not os.stat(file).st_mode & 0o444:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_like_a_user)


def test_messy_folder_every_good_file_done_every_bad_one_named_once(tmp_path, capsys, unreadable_as_root):
    root = tmp_path / "messy"
    root.mkdir()
    bad, good = make_messy_folder(root)
    save(tmp_path / "style.png", sample("swirls.jpg", 40))
    out = root / "styled"  # inside the input: must not be read back
    code = main(["run", str(root), "--style", str(tmp_path / "style.png"), "-o", str(out), *FAST])
    err = capsys.readouterr().err

    assert code == 1
    errors = error_lines(err)
    for name, reason in bad.items():
        lines = [line for line in errors if f"{root / name}:" in line]
        assert len(lines) == 1 and reason in lines[0], (name, reason, errors)
    assert len(errors) == len(bad)
    assert "Traceback" not in err
    written = outputs(out)
    assert written == sorted(str(Path(name).with_suffix(".png")) for name in good)
    assert f"{len(good)} done" in err and f"{len(bad)} failed" in err
    upright = Image.open(out / "rotated.png").size
    assert upright[0] < upright[1]  # 40x30 on its side, stored turned: output is portrait
    for name in good:  # each result is a real picture, not a blank
        assert np.asarray(Image.open(out / Path(name).with_suffix(".png"))).std() > 5
    # Rerun: everything done is skipped, the same bad files are named again, nothing else.
    code = main(["run", str(root), "--style", str(tmp_path / "style.png"), "-o", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 1 and f"{len(good)} skipped" in err and len(error_lines(err)) == len(bad)


@pytest.mark.parametrize("style", ["tiny", "huge", "gray"])
def test_unusual_style_images_work(tmp_path, capsys, style):
    photo = save(tmp_path / "photo.png", sample("coffee.jpg", 40))
    swirls = Image.fromarray(sample("swirls.jpg", 256))
    image = {"tiny": swirls.resize((6, 4)), "huge": swirls.resize((4000, 3000)), "gray": swirls.convert("L")}[style]
    image.save(tmp_path / "style.png")
    code = main(["run", str(photo), "--style", str(tmp_path / "style.png"), "-o", str(tmp_path / "out.png"), *FAST])
    assert code == 0, capsys.readouterr().err
    width, height = Image.open(photo).size
    assert Image.open(tmp_path / "out.png").size == (32, round(height * 32 / width))


def damaged_videos(folder: Path) -> dict[str, tuple[str, int | None]]:
    """Videos, each with what the user must see: a message (or '' for a clean
    run) and the number of frames the output must have (None: no output)."""
    folder.mkdir()
    good = make_video(folder / "good.mp4", frames=20, audio=False)
    mjpeg = make_video(folder / "source.avi", frames=10, audio=False, codec="mjpeg").read_bytes()
    (folder / "source.avi").unlink()
    frame_bytes = len(mjpeg) // 10
    # The header says 10 frames; the file stops after about 6, in the middle of one.
    (folder / "ends mid-frame.avi").write_bytes(mjpeg[: int(6.5 * frame_bytes)])
    # Random bytes over the middle of an H.264 stream: frames that cannot be decoded.
    data = bytearray(good.read_bytes())
    start, stop = int(len(data) * 0.45), int(len(data) * 0.55)
    data[start:stop] = np.random.default_rng(1).bytes(stop - start)
    (folder / "corrupt middle.mp4").write_bytes(bytes(data))
    # A container whose header is intact but whose frames are all zeros.
    header = len(good.read_bytes()) // 8
    zeroed = bytearray(good.read_bytes())
    zeroed[header:] = bytes(len(zeroed) - header)
    (folder / "no frames.mp4").write_bytes(bytes(zeroed))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mkv").write_text("not a video\n")
    return {
        "good.mp4": ("", 20),
        "ends mid-frame.avi": ("the video ended after frame", None),
        "corrupt middle.mp4": ("could not be decoded (damaged); the frame before them is repeated", 20),
        "no frames.mp4": ("not a video OpenCV can read", None),
        "empty.mp4": ("empty file", None),
        "text.mkv": ("not a video OpenCV can read", None),
    }


def test_damaged_videos_keep_what_can_be_read(tmp_path, capfd):
    # capfd, not capsys: FFmpeg writes to the file descriptor, not sys.stderr.
    expected = damaged_videos(tmp_path / "videos")
    save(tmp_path / "style.png", sample("swirls.jpg", 40))
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "videos"), "--style", str(tmp_path / "style.png"), "-o", str(out),
                 "--size", "32", "--iterations", "2", "--min-iterations", "1", *SHALLOW_ARGS])
    err = capfd.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "[h264" not in err  # FFmpeg's own decoder noise stays out of the log
    for name, (message, frames) in expected.items():
        lines = [line for line in err.splitlines()
                 if f"{name}:" in line and line.startswith(("framestyle: error:", "framestyle: warning:"))]
        if message:
            assert len(lines) == 1 and message in lines[0], (name, lines)
        else:
            assert not lines, lines
        output = out / Path(name).with_suffix(".mp4")
        if frames is not None:
            assert read_video_info(output)[0] == frames, name
    partly = read_video_info(out / "ends mid-frame.mp4")[0]
    assert 4 <= partly <= 7
    assert not (out / "empty.mp4").exists() and not (out / "text.mp4").exists()


@pytest.mark.parametrize("damage", ["corrupt middle", "cut short"])
def test_damaged_video_with_sound_keeps_picture_and_sound_the_same_length(damage, tmp_path, capsys):
    codec, suffix = ("libx264", ".mp4") if damage == "corrupt middle" else ("mjpeg", ".avi")
    data = bytearray(make_video(tmp_path / f"whole{suffix}", frames=20, audio=True, codec=codec).read_bytes())
    if damage == "corrupt middle":
        start, stop = int(len(data) * 0.45), int(len(data) * 0.55)
        data[start:stop] = np.random.default_rng(1).bytes(stop - start)
    else:
        data = data[: int(len(data) * 0.6)]
    damaged = tmp_path / f"damaged{suffix}"
    damaged.write_bytes(bytes(data))
    save(tmp_path / "style.png", sample("swirls.jpg", 40))
    out = tmp_path / "out.mp4"
    assert main(["run", str(damaged), "--style", str(tmp_path / "style.png"), "-o", str(out), *FAST]) == 0
    assert f"{damaged.name}: " in capsys.readouterr().err  # the damage is reported
    frames, fps, has_audio = read_video_info(out)
    assert has_audio and (frames == 20 if damage == "corrupt middle" else 0 < frames < 20)
    picture, sound = stream_seconds(out, "v"), stream_seconds(out, "a")

    assert abs(picture - sound) < 1.5 / fps, (picture, sound)  # AAC counts in 23 ms blocks
    assert abs(sound - stream_seconds(damaged, "a")) < 1 / fps
