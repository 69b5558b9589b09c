"""Videos end to end: frame rate, audio, warm start, temporal consistency,
scene cuts, resume after an interruption, damaged files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    SHALLOW,
    SHALLOW_ARGS,
    decoded_frames,
    make_vfr_video,
    make_video,
    outputs,
    sample,
    save,
    stream_seconds,
)
from PIL import Image

import framestyle
from framestyle.cli import main
from framestyle.host import PluginHost
from framestyle.media.encodings import exact_fps, ffmpeg_exe
from framestyle.media.video import VideoSource, probe_audio, read_video_info
from framestyle.transfer.pixels import to_tensor
from framestyle.types import StylizeResult

FAST = ["--size", "48", "--iterations", "60", "--min-iterations", "5"]
CHEAP = ["--size", "48", "--iterations", "6", "--min-iterations", "2", *SHALLOW_ARGS]  # plumbing, not quality


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any run reads the cache."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture
def style(tmp_path):
    return save(tmp_path / "style.png", sample("swirls.jpg", 48))


def report(output):
    return json.loads(output.with_name(output.name + ".report.json").read_text())


def test_loader_streams_rgb_frames_with_the_source_metadata(clip):
    source = VideoSource(clip)
    assert source.info.kind == "video" and (source.info.width, source.info.height) == (48, 32)
    assert Fraction(source.info.fps).limit_denominator(1001) == Fraction(30000, 1001)
    frames = list(source.frames())
    source.close()
    assert len(frames) == 6 == source.frames_read
    square = frames[0][7:13, 7:13].reshape(-1, 3).mean(0)  # the yellow square: R and G high, B low
    assert square[0] > 200 and square[1] > 200 and square[2] < 100


def test_video_keeps_frame_count_rate_and_audio_and_warm_frames_need_fewer_iterations(
        clip, style, tmp_path, capsys):
    out = tmp_path / "styled.mp4"
    assert main(["run", str(clip), "--style", str(style), "-o", str(out), *FAST, "--first-iterations", "120",
                 "--iterations", "120"]) == 0
    frames, fps, has_audio = read_video_info(out)
    assert (frames, fps, has_audio) == (6, Fraction(30000, 1001), True)
    assert np.array_equal(sound(out), sound(clip))  # the source's AAC, copied: the very same samples
    data = report(out)
    per_frame = data["frames"]
    assert [f["warm"] for f in per_frame] == [False] + [True] * 5
    cold = per_frame[0]["iterations"]
    assert 60 < cold <= 120  # its coarse-to-fine levels may stop once converged, within the budget
    warm = [f["iterations"] for f in per_frame[1:]]
    assert max(warm) < 120 and np.mean(warm) < 60, warm  # warm frames stop once their loss settles
    assert all(f["warp_error"] is not None for f in per_frame[1:])
    assert data["weights"].startswith("Oxford") and data["versions"]["torch"]
    assert data["source"]["frames_read"] == 6 and data["settings"]["iterations"] == 120
    assert f"6 frames, cold frames {cold} iterations" in capsys.readouterr().err


def sound(path: Path) -> np.ndarray:
    """The first audio stream's samples, decoded to mono 48 kHz floats."""
    decoded = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le",
                              "-ac", "1", "-ar", "48000", "-"], capture_output=True, check=True)
    return np.frombuffer(decoded.stdout, np.float32)


@pytest.mark.parametrize("container", ["avi", "ts", "mpg", "webm", "ogv", "wmv", "mkv", "mov"])
def test_a_constant_rate_keeps_its_exact_rate_in_every_container(container, tmp_path):
    """The packet check that finds a variable rate must not disturb a constant
    one, whether the container stores durations, decode times only (MPEG-PS)
    or no frame index (mkv, webm)."""
    path = tmp_path / f"clip.{container}"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=48x32:rate=30000/1001",
                    "-frames:v", "12", str(path)], check=True)
    source = VideoSource(path)
    source.close()
    assert (source.info.frame_count, exact_fps(source.info.fps)) == (12, Fraction(30000, 1001))


@pytest.mark.parametrize("container", ["mov", "mkv"])
def test_odd_sized_variable_rate_video_with_pcm_sound_keeps_every_frame_and_its_length(
        container, style, tmp_path, capsys):
    source = make_vfr_video(tmp_path / f"phone.{container}")
    out = tmp_path / "styled.mp4"
    assert main(["run", str(source), "--style", str(style), "-o", str(out), *CHEAP]) == 0
    assert "warning" not in capsys.readouterr().err  # neither truncated nor damaged
    frames, fps, has_audio = read_video_info(out)
    assert frames == 12 and has_audio
    assert fps == 20  # the average rate: 12 frames in 0.6 s, not the container's nominal 18 or 30
    capture = VideoSource(out)
    assert (capture.info.width, capture.info.height) == (48, 32)  # yuv420p needs even sizes
    capture.close()
    assert probe_audio(out) == "aac"  # PCM has no place in an mp4
    heard, recorded = sound(out), sound(source)
    assert len(heard) == len(recorded) and np.corrcoef(heard, recorded)[0, 1] > 0.99  # the same sound, as AAC
    one_frame = 1 / 20
    assert abs(stream_seconds(out, "a") - stream_seconds(source, "a")) < one_frame
    assert abs(stream_seconds(out, "v") - stream_seconds(source, "a")) < one_frame  # picture and sound in step


def test_style_must_be_an_image(clip, tmp_path, capsys):
    assert main(["run", str(clip), "--style", str(clip), "-o", str(tmp_path / "o.mp4"), *FAST]) == 2
    assert "style image" in capsys.readouterr().err


def test_warm_start_and_temporal_loss_each_lower_the_warp_error(clip, style, tmp_path):
    # 15 iterations a frame: the ratios are 0.36 and 0.11 here (0.34 and 0.12 with the AVX2
    # kind's rounding). No margin: this is about the frames' steadiness, not their edges.
    common = ["run", str(clip), "--style", str(style), "--size", "48", "--iterations", "15",
              "--min-iterations", "15", "--precision", "fp32", "--margin", "0"]
    runs = {"both": [], "warm start only": ["--temporal-weight", "0"],
            "neither": ["--no-warm-start", "--temporal-weight", "0"]}
    error = {}
    for name, options in runs.items():
        out = tmp_path / f"{name}.mp4"
        assert main([*common, "-o", str(out), *options]) == 0
        error[name] = report(out)["summary"]["warp_error_mean"]
    # Each has an effect of its own: warm start alone steadies the frames,
    # and the temporal loss on top of it steadies them further.
    assert error["warm start only"] < 0.7 * error["neither"], error
    assert error["both"] < 0.7 * error["warm start only"], error


class Replay:
    """A ``stylize`` that returns a source frame as it is: the frame's own
    (``previous=False``), or the previous one's (a frame that lags)."""

    def __init__(self, previous: bool) -> None:
        self.previous = previous

    @framestyle.hookimpl
    def stylize(self, job, init):
        rgb = job.previous_source if self.previous else None
        return StylizeResult(job.content if rgb is None else to_tensor(rgb, job.content.device), 0, 0.0, {})


@pytest.mark.parametrize("previous", [False, True])
def test_the_report_flags_frames_that_keep_the_previous_frames_content(clip, style, tmp_path, previous):
    """And gives the source's own E_warp beside each frame's: the floor, here
    the same pairs' error in the source, which the frames replay."""
    host = PluginHost()
    host.register(Replay(previous), "replay")
    out = tmp_path / "replayed.mp4"
    framestyle.run(clip, style, out, size=48, verbosity=-1, host=host)
    data = report(out)
    frames = data["frames"]
    assert [f["lag"] for f in frames] == [None] + [previous] * 5
    floors = [f["source_warp_error"] for f in frames[1:]]
    assert frames[0]["source_warp_error"] is None and all(floor > 1e-4 for floor in floors), floors
    if not previous:  # the frames are the source's, so their E_warp is the floor, to the encoder's rounding
        ours = [f["warp_error"] for f in frames[1:]]
        assert all(abs(a - b) < 0.2 * b for a, b in zip(ours, floors, strict=True)), (ours, floors)
    assert data["summary"]["lagging_frames"] == (5 if previous else 0)


def test_scene_cut_starts_cold(style, tmp_path):
    """... with --first-iterations' budget, even 0 (the content as it is)."""
    clip = make_video(tmp_path / "cut.mp4", frames=6, cut_at=3, audio=False)
    assert main(["run", str(clip), "--style", str(style), "-o", str(tmp_path / "o.mp4"), *CHEAP,
                 "--first-iterations", "0"]) == 0
    per_frame = report(tmp_path / "o.mp4")["frames"]
    assert [f["cut"] for f in per_frame] == [False, False, False, True, False, False]
    assert [f["warm"] for f in per_frame] == [False, True, True, False, True, True]
    assert [f["iterations"] for f in per_frame if not f["warm"]] == [0, 0]
    assert per_frame[3]["warp_error"] is None
    frames, _, has_audio = read_video_info(tmp_path / "o.mp4")
    assert frames == 6 and not has_audio


def test_interrupted_video_resumes_without_redoing_frames_and_gives_the_same_video(clip, style, tmp_path, weights):
    options = dict(size=32, iterations=8, min_iterations=3, weights=weights, **SHALLOW)  # resume, not quality
    reference = tmp_path / "reference.mp4"
    assert framestyle.run(clip, style, reference, **options).exit_code == 0

    stylised: list[int] = []

    class StopAfterFour:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if not event.reused:
                stylised.append(event.index)
            if event.index == 3 and not event.reused:
                raise KeyboardInterrupt

    out = tmp_path / "out.mp4"
    host = PluginHost(autoload=False)
    host.register(StopAfterFour(), "stop")
    summary = framestyle.run(clip, style, out, host=host, **options)
    assert summary.interrupted and summary.exit_code == 130
    assert not out.exists()  # nothing under the final name
    assert not list(tmp_path.glob(".out.mp4.*framestyle-partial"))
    assert len(list(tmp_path.glob(".out.mp4.framestyle-work/frame_*.png"))) == 4

    host = PluginHost(autoload=False)
    host.register(StopAfterFour(), "stop")  # frame 3 is reused now, so it does not stop
    summary = framestyle.run(clip, style, out, host=host, **options)
    assert summary.exit_code == 0
    assert stylised == [0, 1, 2, 3, 4, 5]  # every frame stylised exactly once over both runs
    assert [f["reused"] for f in report(out)["frames"]] == [True] * 4 + [False] * 2
    assert not list(tmp_path.glob(".out.mp4.framestyle-work"))  # cleaned up once complete
    for a, b in zip(decoded_frames(out), decoded_frames(reference), strict=True):
        assert np.array_equal(a, b)
    assert out.read_bytes() == reference.read_bytes()

    again = framestyle.run(clip, style, out, **options)
    assert again.skipped == 1 and again.done == 0


@pytest.mark.parametrize("change", ["nothing", "settings", "source", "weights"])
def test_finished_frames_are_reused_only_when_nothing_that_shapes_them_changed(change, style, tmp_path, weights):
    clip = make_video(tmp_path / "clip.mp4", frames=4, audio=False)

    class StopAtTwo:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if event.index == 1 and not event.reused:
                raise KeyboardInterrupt

    host = PluginHost(autoload=False)
    host.register(StopAtTwo(), "stop")
    out = tmp_path / "out.mp4"
    options = dict(size=32, iterations=3, min_iterations=1, weights=weights, **SHALLOW)
    assert framestyle.run(clip, style, out, host=host, **options).exit_code == 130
    if change == "settings":
        options["iterations"] = 4
    elif change == "source":  # same name, same size, other pictures
        make_video(clip, frames=4, audio=False, cut_at=0)
    elif change == "weights":  # same file name and description, other numbers
        first = next(iter(weights.state))
        options["weights"] = dataclasses.replace(
            weights, state={**weights.state, first: weights.state[first] * 1.01})
    assert framestyle.run(clip, style, out, **options).exit_code == 0
    reused = [f["reused"] for f in report(out)["frames"]]
    assert reused == ([True, True, False, False] if change == "nothing" else [False] * 4)


def test_frames_writer_and_folder_of_videos(clip, style, tmp_path):
    code = main(["run", str(clip), "--style", str(style), "-o", str(tmp_path / "frames"),
                 "--writer", "frames", *CHEAP])
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "frames").glob("*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(1, 7)]
    assert Image.open(tmp_path / "frames" / names[0]).size == (48, 32)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    save(folder / "still.png", sample("coffee.jpg", 48))
    code = main(["run", str(folder), "--style", str(style), "-o", str(tmp_path / "o"), *CHEAP])
    assert code == 0
    assert outputs(tmp_path / "o") == ["a.mp4", "a.mp4.report.json", "still.png"]


def test_truncated_video_keeps_the_frames_it_had(style, tmp_path, capsys):
    whole = make_video(tmp_path / "whole.avi", frames=8, audio=False, codec="mjpeg")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code = main(["run", str(cut), "--style", str(style), "-o", str(tmp_path / "o.mp4"),
                 "--size", "48", "--iterations", "3", "--min-iterations", "1", *SHALLOW_ARGS])
    err = capsys.readouterr().err
    frames, _, _ = read_video_info(tmp_path / "o.mp4")
    assert code == 0 and 0 < frames < 8
    assert f"cut.avi: the video ended after frame {frames} of the 8" in err


@pytest.mark.parametrize("content,reason", [(b"", "empty file"), (b"\x00" * 5000, "not a video")])
def test_unreadable_videos_fail_with_one_line(style, tmp_path, capsys, content, reason):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    code = main(["run", str(bad), str(tmp_path / "missing.mp4"), "--style", str(style),
                 "-o", str(tmp_path / "o"), "--size", "48", "--iterations", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"bad.mp4: {reason}" in err and "missing.mp4: no such file" in err
    assert outputs(tmp_path / "o") == []


def test_plain_progress_reports_video_frames_periodically(clip, style, tmp_path, capsys, monkeypatch):
    from framestyle.builtin import progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)  # every frame, instead of every 30 s
    assert main(["run", str(clip), "--style", str(style), "-o", str(tmp_path / "o.mp4"), *CHEAP]) == 0
    err = capsys.readouterr().err
    assert "clip.mp4: frame 3/6" in err and "frames/min" in err
    assert "6 frames, " in err


def test_frames_writer_never_deletes_frames_it_did_not_make(clip, style, tmp_path, capsys):
    theirs = tmp_path / "frames" / "frame_000001.png"
    save(theirs, sample("coffee.jpg", 16))
    before = theirs.read_bytes()
    code = main(["run", str(clip), "--style", str(style), "-o", str(tmp_path / "frames"), "--writer", "frames",
                 *CHEAP])
    assert code == 1 and "did not make" in capsys.readouterr().err
    assert theirs.read_bytes() == before


def test_progress_rate_leaves_out_frames_reused_after_a_resume():
    from framestyle.builtin.progress import video_progress

    # 120 of 250 frames, 100 of them reused at once, 20 stylised in 10 minutes
    assert video_progress(120, 100, 250, 600.0) == "frame 120/250, 2.0 frames/min, about 65 min left"


@pytest.mark.parametrize(("container", "codec"), [
    ("mp4", ["-c:v", "libx264", "-g", "12", "-bf", "2"]), ("mov", ["-c:v", "libx264", "-g", "10"]),
    ("mkv", ["-c:v", "libx264", "-g", "10"]), ("webm", ["-c:v", "libvpx-vp9", "-g", "10", "-deadline", "realtime"]),
    ("avi", ["-c:v", "ffv1"]), ("ogv", ["-c:v", "libtheora", "-g", "10"]),
    ("ts", ["-c:v", "libx264", "-g", "10"]), ("mpg", ["-c:v", "mpeg2video", "-g", "10"]),
])
def test_frames_from_a_frame_on_are_the_frames_read_from_the_start(container, codec, tmp_path):
    """A segment's frames from its first on: sought in the containers where
    the seek lands exactly (frames between keyframes, B-frames), decoded from
    the start in the others (MPEG streams land on a later keyframe)."""
    path = tmp_path / f"clip.{container}"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25",
                    "-frames:v", "40", *codec, str(path)], check=True)
    source = VideoSource(path)
    everything = list(source.frames())
    source.close()
    assert len(everything) == 40
    for start in (1, 7, 13, 29):
        source = VideoSource(path)
        got = [next(frames) for frames in [source.frames_from(start)] for _ in range(4)]
        source.close()
        assert [index for index, _ in got] == list(range(start, start + 4))
        assert all(np.array_equal(frame, everything[index]) for index, frame in got), (container, start)
