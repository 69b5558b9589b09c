"""Numbered image files in as one video (``frame_%04d.png``, ``frame_####.png``),
as compositing tools and EbSynth write them: out at the asked rate, in
their numbers' order, with their gaps and bad files kept in time."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW_ARGS, decoded_frames, sample, save

from framestyle.cli import main
from framestyle.engine.frame_store import fingerprint
from framestyle.media.sequence import SequenceSource, numbered_files, sequence_stem
from framestyle.media.video import read_video_info
from framestyle.settings import Settings
from framestyle.testing import pattern

# Plumbing, not quality; every frame from its own content, so each looks most like its source.
CHEAP = ["--size", "48", "--iterations", "6", "--min-iterations", "2", "--no-warm-start", *SHALLOW_ARGS]


@pytest.fixture
def style(tmp_path: Path) -> Path:
    return save(tmp_path / "style.png", sample("swirls.jpg", 48))


def write_sequence(folder: Path, numbers: range | list[int], name: str = "frame_{:04d}.png",
                   step: int = 3) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = [pattern(step * i) for i in range(len(numbers))]
    for number, frame in zip(numbers, frames, strict=True):
        save(folder / name.format(number), frame)
    return frames


def nearest_sources(written: list[np.ndarray], sources: list[np.ndarray]) -> list[int]:
    """For each written frame, the source frame it looks most like."""
    sources = [frame.astype(float) for frame in sources]
    return [int(np.argmin([np.square(frame.astype(float) - source).mean() for source in sources]))
            for frame in written]


def test_a_numbered_sequence_becomes_a_video_at_the_asked_rate_in_its_numbers_order(tmp_path, style, weights):
    # In the numbers' order, not the names': 1000 comes after 999.
    frames = write_sequence(tmp_path / "shot", [997, 998, 999, 1000, 1001, 1002], name="frame_{:03d}.png")
    write_sequence(tmp_path / "shot", [1], name="other_{:03d}.png")  # another sequence beside it
    out = tmp_path / "out.mp4"
    assert main(["run", str(tmp_path / "shot" / "frame_%03d.png"), "--style", str(style), "-o", str(out),
                 "--fps", "12", *CHEAP]) == 0
    count, fps, has_audio = read_video_info(out)
    assert (count, fps, has_audio) == (6, Fraction(12), False)
    assert nearest_sources(decoded_frames(out), frames) == [0, 1, 2, 3, 4, 5]


def test_hashes_name_a_sequence_too_and_a_folder_output_is_named_for_it(tmp_path, style, weights):
    write_sequence(tmp_path / "shot", range(1, 4), name="plate.{:04d}.png")
    assert main(["run", str(tmp_path / "shot" / "plate.####.png"), "--style", str(style),
                 "-o", str(tmp_path / "out"), *CHEAP]) == 0
    assert [p.name for p in (tmp_path / "out").glob("*.mp4")] == ["plate.mp4"]
    assert read_video_info(tmp_path / "out" / "plate.mp4")[:2] == (3, Fraction(24))  # --fps's default


def test_a_missing_number_and_an_unreadable_file_keep_their_place_in_time(tmp_path, style, weights, capsys):
    frames = write_sequence(tmp_path / "shot", [1, 2, 3, 4, 5, 6])
    (tmp_path / "shot" / "frame_0003.png").unlink()
    (tmp_path / "shot" / "frame_0005.png").write_bytes(b"not a picture")
    out = tmp_path / "out.mp4"
    assert main(["run", str(tmp_path / "shot" / "frame_%04d.png"), "--style", str(style), "-o", str(out),
                 *CHEAP]) == 0
    err = capsys.readouterr().err
    assert "frame_0005.png: not an image" in err and "frame(s) 3 missing or unreadable" in err
    assert nearest_sources(decoded_frames(out), frames) == [0, 1, 1, 3, 3, 5]  # the frame before fills each gap


def test_a_pattern_no_file_matches_fails_alone_with_one_line(tmp_path, style, weights, capsys):
    photo = save(tmp_path / "photo.png", sample("chelsea.jpg", 48))
    missing = tmp_path / "shot" / "frame_%04d.png"
    (tmp_path / "shot").mkdir()
    code = main(["run", str(missing), str(photo), "--style", str(style), "-o", str(tmp_path / "out"),
                 *CHEAP])
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert lines == [f"framestyle: error: {missing}: no files match the sequence's pattern"]
    assert (tmp_path / "out" / "photo.png").is_file()


def test_a_sequence_splits_into_segments_read_from_their_own_files(tmp_path, style, weights, capsys):
    frames = write_sequence(tmp_path / "shot", range(1, 19), step=1)  # 16 frames at least make two segments
    out = tmp_path / "out.mp4"
    assert main(["run", str(tmp_path / "shot" / "frame_%04d.png"), "--style", str(style), "-o", str(out),
                 "--batch-size", "2", *CHEAP, "-v"]) == 0
    assert "18 frames, numbered files; 2 segments" in capsys.readouterr().err
    assert nearest_sources(decoded_frames(out), frames) == list(range(18))
    source = SequenceSource(tmp_path / "shot" / "frame_%04d.png")
    assert [index for index, _ in source.frames_from(15)] == [15, 16, 17]


def test_a_changed_frame_file_is_a_changed_source_for_resume(tmp_path):
    write_sequence(tmp_path / "shot", range(1, 4))
    pattern_path = tmp_path / "shot" / "frame_%04d.png"
    info = SequenceSource(pattern_path).info
    settings = Settings(inputs=[pattern_path], style=[], output=tmp_path / "o.mp4")
    before = fingerprint(settings, info, "weights")
    assert fingerprint(settings, info, "weights") == before
    assert fingerprint(Settings(**{**settings.__dict__, "fps": 30.0}), info, "weights") == before  # timing only
    changed = tmp_path / "shot" / "frame_0002.png"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(settings, info, "weights") != before


def test_sequence_names(tmp_path):
    assert sequence_stem(Path("shot/frame_%04d.png")) == "frame"
    assert sequence_stem(Path("shot/plate.####.exr")) == "plate"
    assert sequence_stem(Path("shot/%d.png")) == "shot"
    (tmp_path / "a").mkdir()
    for name in ("f_0001.png", "f_12345.png", "f_001.png", "f_0002.jpg", "g_0003.png"):
        (tmp_path / "a" / name).touch()
    assert [n for n, _ in numbered_files(tmp_path / "a" / "f_%04d.png")] == [1, 12345]  # 001: narrower than %04d
    assert [n for n, _ in numbered_files(tmp_path / "a" / "f_%d.png")] == [1, 1, 12345]


def test_fps_must_be_a_rate(tmp_path, capsys):
    assert main(["run", "x_%04d.png", "--style", "s.png", "-o", str(tmp_path / "o.mp4"), "--fps", "0"]) == 2
    assert "--fps 0: must be above 0" in capsys.readouterr().err
