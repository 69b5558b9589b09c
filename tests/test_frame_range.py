"""Part of a video, --start to --end, by frame number or by time: exactly
those frames, in order, with the sound of that part of the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW_ARGS, decoded_frames, make_video, sample, save

from framestyle.cli import main
from framestyle.media.encodings import ffmpeg_exe
from framestyle.media.images import resize
from framestyle.media.video import read_video_info

# Plumbing, not quality; every frame from its own content, so each looks most like its source.
CHEAP = ["--size", "48", "--iterations", "6", "--min-iterations", "2", "--no-warm-start", *SHALLOW_ARGS]
RATE = 44100


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """3 s at 10 frames/s, a coarse random texture panning 3 px a frame (each
    frame another), and a tone that steps each second: 300, 600, 900 Hz."""
    path = tmp_path_factory.mktemp("range") / "clip.mp4"
    texture = np.random.default_rng(0).integers(0, 256, (12, 40, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    command = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48",
               "-framerate", "10", "-i", "-",
               "-f", "lavfi", "-i", f"aevalsrc='sin(2*PI*(300+300*floor(t))*t)':s={RATE}:d=3",
               "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv444p", "-c:a", "aac", "-b:a", "128k", str(path)]
    frames = b"".join(texture[:, 3 * t: 3 * t + 64].tobytes() for t in range(30))
    subprocess.run(command, input=frames, check=True)
    return path


@pytest.fixture
def style(tmp_path: Path) -> Path:
    return save(tmp_path / "style.png", sample("swirls.jpg", 48))


def source_numbers(written: Path, source: Path) -> list[int]:
    """For each frame written, the source frame (counted from 1) it looks most like."""
    frames = [frame.astype(float) for frame in decoded_frames(written)]
    height, width = frames[0].shape[:2]
    originals = [resize(frame, width, height).astype(float) for frame in decoded_frames(source)]
    return [1 + int(np.argmin([np.square(frame - original).mean() for original in originals])) for frame in frames]


def tone(path: Path) -> tuple[float, float]:
    """The sound's dominant frequency (Hz) and its length (s)."""
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                          "-ar", str(RATE), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(raw, dtype=np.float32)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[spectrum.argmax()]), len(samples) / RATE


def test_frame_numbers_take_exactly_those_frames_and_their_sound(clip, style, tmp_path, weights):
    out = tmp_path / "part.mp4"
    assert main(["run", str(clip), "--style", str(style), "-o", str(out), "--start", "13", "--end", "18",
                 *CHEAP]) == 0
    assert read_video_info(out)[0] == 6  # 13 to 18, both taken
    assert source_numbers(out, clip) == [13, 14, 15, 16, 17, 18]
    frequency, seconds = tone(out)
    assert abs(frequency - 600) < 20 and abs(seconds - 0.6) < 0.05  # frames 13-18 are shown at 1.2-1.8 s


def test_times_split_into_segments_take_the_frames_shown_between_them(clip, style, tmp_path, weights, capsys):
    out = tmp_path / "part.mp4"
    assert main(["run", str(clip), "--style", str(style), "-o", str(out), "--start", "0.5s", "--end", "2.5s",
                 "--batch-size", "2", "-v", *CHEAP]) == 0
    assert "20 frames, counted in the container; 2 segments" in capsys.readouterr().err
    assert source_numbers(out, clip) == list(range(6, 26))  # shown at 0.5 s to 2.4 s
    frequency, seconds = tone(out)
    assert abs(seconds - 2.0) < 0.05 and abs(frequency - 600) < 20  # half a second of 300 Hz, one of 600


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--start", "soon", "--start soon: a frame number (1, 2, …) or a time such as 12.5s"),
    ("--end", "0", "--end 0: frames are counted from 1"),
])
def test_a_position_that_is_neither_frame_nor_time_is_refused_up_front(tmp_path, option, value, says, capsys):
    assert main(["run", "clip.mp4", "--style", "s.png", "-o", str(tmp_path / "o.mp4"), option, value]) == 2
    assert says in capsys.readouterr().err


def test_a_start_past_the_end_fails_that_video_alone(clip, style, tmp_path, weights, capsys):
    short = make_video(tmp_path / "short.mp4", frames=6)
    code = main(["run", str(clip), str(short), "--style", str(style), "-o", str(tmp_path / "out"),
                 "--start", "10", *CHEAP])
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"framestyle: error: {short}: --start: frame 10 is past the video's end (6 frames)"]
    assert read_video_info(tmp_path / "out" / "clip.mp4")[0] == 21  # 10 to 30


def test_the_python_api_takes_a_part_by_frame_numbers_as_ints(clip, style, tmp_path, weights):
    import framestyle

    end = framestyle.run(clip, style, tmp_path / "part.mp4", start=29, end=30, size=48, iterations=2,
                         min_iterations=1, weights=weights)
    assert end.exit_code == 0 and read_video_info(tmp_path / "part.mp4")[0] == 2
