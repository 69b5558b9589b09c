"""A video split into segments optimised side by side (--batch-size N):
boundaries at scene cuts or cross-faded, resumable, every frame written once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers import SHALLOW, decoded_frames, make_video, sample, save, stream_seconds

import framestyle
from framestyle.builtin import video as builtin_video
from framestyle.engine.planning import plan as planning
from framestyle.engine.planning import segments as splitting
from framestyle.engine.planning.segments import Segment, plan_segments
from framestyle.host import PluginHost
from framestyle.media import video as video_module
from framestyle.media.images import read_image
from framestyle.media.video import VideoSource, read_video_info

# One pytest-xdist worker for the module: its fixtures are built once.
pytestmark = pytest.mark.xdist_group("segments")

OPTIONS = dict(size=48, iterations=8, first_iterations=16, min_iterations=3, precision="fp32", verbosity=-1,
               writer="frames", **SHALLOW)


def test_segments_start_at_cuts_or_overlap_by_a_few_frames():
    assert plan_segments(40, 4, []) == [Segment(0, 0, 10), Segment(6, 10, 20), Segment(16, 20, 30),
                                        Segment(26, 30, 40)]
    assert plan_segments(40, 2, [18]) == [Segment(0, 0, 18), Segment(18, 18, 40)]  # near the middle: used
    assert plan_segments(40, 2, [3]) == [Segment(0, 0, 20), Segment(16, 20, 40)]  # too far from it
    assert plan_segments(12, 4, []) == [Segment(0, 0, 12)]  # too short to split
    assert plan_segments(17, 8, [9]) == [Segment(0, 0, 9), Segment(9, 9, 17)]


def frames(folder: Path) -> list[np.ndarray]:
    return [read_image(p).astype(np.float32) for p in sorted(folder.glob("frame_*.png"))]


def steps(images: list[np.ndarray]) -> np.ndarray:
    """Mean absolute change from each frame to the next where the clip's
    background moved (it pans 2 pixels a frame to the left)."""
    return np.array([np.abs(b[:, :-2] - a[:, 2:]).mean() for a, b in zip(images, images[1:], strict=False)])


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=24, audio=False)


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    return save(tmp_path_factory.mktemp("style") / "style.png", sample("swirls.jpg", 48))


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def two_segments(long_clip, style, weights, tmp_path_factory) -> tuple[Path, list[str]]:
    """The long clip stylised in two segments (as PNGs), and what the run logged."""
    folder = tmp_path_factory.mktemp("two-segments") / "faded"
    logger, handler = logging.getLogger("framestyle"), Messages()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        summary = framestyle.run(long_clip, style, folder, batch_size=2, weights=weights,
                                 host=PluginHost(autoload=False), **OPTIONS)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert summary.exit_code == 0
    return folder, handler.messages


def test_a_video_in_two_segments_has_no_jump_where_they_meet(two_segments, long_clip, style, tmp_path, weights,
                                                              monkeypatch):
    folder, messages = two_segments
    planned = "24 frames, counted in the container; 2 segments from frames 1, 13, 1 cross-faded over 4 frames"
    assert any(planned in message for message in messages)
    faded = frames(folder)
    assert len(faded) == 24 and not list(folder.glob("head_*"))
    monkeypatch.setattr(splitting, "OVERLAP", 0)
    framestyle.run(long_clip, style, tmp_path / "hard", batch_size=2, weights=weights,
                   host=PluginHost(autoload=False), **OPTIONS)
    hard = frames(tmp_path / "hard")
    # A hard switch from one warm-start chain to the other shows as a jump
    # into frame 13; the cross-fade over frames 9-12 spreads it so that no
    # step there stands out from the steps elsewhere.
    seam = slice(7, 12)
    hard_steps, faded_steps = steps(hard), steps(faded)
    elsewhere = np.delete(faded_steps, range(7, 12))
    assert hard_steps[11] > 1.8 * np.delete(hard_steps, range(7, 12)).max()
    assert faded_steps[seam].max() < 0.65 * hard_steps[11]
    assert faded_steps[seam].max() < 1.3 * elsewhere.max()


CHEAP = {**OPTIONS, "iterations": 3, "first_iterations": 3, "min_iterations": 3}


def test_a_scene_cut_in_a_segments_overlap_costs_nothing(tmp_path, style, weights, caplog):
    """The plan counts the frames in the container and splits evenly (frames
    9-12 are the second segment's head); the cut at frame 11 restarts both
    chains alike, so from it on the cross-fade mixes two equal frames and the
    video is the unsplit one's. Before the cut it is not: the second chain
    starts cold at frame 9 where the first one runs warm."""
    clip = make_video(tmp_path / "cut.mp4", frames=24, cut_at=10, audio=False)
    with caplog.at_level(logging.INFO, logger="framestyle"):
        summary = framestyle.run(clip, style, tmp_path / "split", batch_size=2, weights=weights,
                                 host=PluginHost(autoload=False), **CHEAP)
    assert summary.exit_code == 0
    assert any("24 frames, counted in the container; 2 segments from frames 1, 13" in r.message
               for r in caplog.records)
    framestyle.run(clip, style, tmp_path / "whole", weights=weights, host=PluginHost(autoload=False), **CHEAP)
    split, whole = frames(tmp_path / "split"), frames(tmp_path / "whole")
    apart = [np.abs(a - b).mean() for a, b in zip(split, whole, strict=True)]
    assert len(apart) == 24 and max(apart[10:]) < 0.2 * max(apart[8:10]), apart


def test_where_the_container_cannot_count_frames_a_boundary_goes_to_a_scene_cut(tmp_path, style, weights, caplog,
                                                                               monkeypatch):
    monkeypatch.setattr(planning, "packet_timing", lambda path: None)
    clip = make_video(tmp_path / "cut.mp4", frames=24, cut_at=10, audio=False)
    cheap = {**OPTIONS, "iterations": 1, "first_iterations": 1, "min_iterations": 1}  # the plan, not the pictures
    with caplog.at_level(logging.INFO, logger="framestyle"):
        summary = framestyle.run(clip, style, tmp_path / "out", batch_size=2, weights=weights,
                                 host=PluginHost(autoload=False), **cheap)
    assert summary.exit_code == 0 and len(frames(tmp_path / "out")) == 24
    assert any("1 scene cut(s); 2 segments from frames 1, 11" in r.message and "cross-faded" not in r.message
               for r in caplog.records)


def test_a_video_with_fewer_frames_than_its_container_counts_keeps_the_frames_read(tmp_path, style, weights,
                                                                                    caplog, monkeypatch):
    """A container that counts 30 packets where 24 frames decode: the second
    segment finds the end, and the video is written with its 24 frames."""
    monkeypatch.setattr(planning, "packet_timing", lambda path: (30, 1.0))
    clip = make_video(tmp_path / "short.mp4", frames=24, audio=False)
    cheap = {**OPTIONS, "iterations": 1, "first_iterations": 1, "min_iterations": 1}
    with caplog.at_level(logging.INFO, logger="framestyle"):
        summary = framestyle.run(clip, style, tmp_path / "out", batch_size=2, weights=weights,
                                 host=PluginHost(autoload=False), **cheap)
    assert summary.exit_code == 0 and len(frames(tmp_path / "out")) == 24
    assert any("30 frames, counted in the container; 2 segments from frames 1, 16" in r.message
               for r in caplog.records)
    assert any("ended after frame 24 of the 30 its container counts" in r.message for r in caplog.records)


def test_an_interrupted_segmented_video_resumes_to_the_same_result(two_segments, long_clip, style, tmp_path, weights):
    """Ctrl-C with both segments part done, then a rerun: every frame is
    stylised once over both runs and the frames equal an uninterrupted run's.
    (The mp4 writer's segmented resume, killed at fixed points, byte for
    byte: tests/test_interrupt.py.)"""
    stylised: list[int] = []

    class StopAfterEight:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if not event.reused:
                stylised.append(event.index)
                if len(stylised) == 8:
                    raise KeyboardInterrupt

    out = tmp_path / "out"
    host = PluginHost(autoload=False)
    host.register(StopAfterEight(), "stop")
    assert framestyle.run(long_clip, style, out, batch_size=2, weights=weights, host=host, **OPTIONS).exit_code == 130
    assert not (out / ".framestyle-complete").exists()
    # Both segments had finished frames: the second one's are the later half.
    assert min(stylised) == 0 and max(stylised) >= 12
    host = PluginHost(autoload=False)
    host.register(StopAfterEight(), "stop")  # it has seen eight: no more stops
    assert framestyle.run(long_clip, style, out, batch_size=2, weights=weights, host=host, **OPTIONS).exit_code == 0
    assert sorted(stylised) == list(range(24))  # every frame stylised once over both runs
    for a, b in zip(frames(out), frames(two_segments[0]), strict=True):
        assert np.array_equal(a, b)


def test_a_segment_seeks_to_its_first_frame_and_gives_the_same_video(long_clip, style, weights, tmp_path,
                                                                     monkeypatch):
    """The second segment starts at frame 9 by seeking (the decoder goes
    back only as far as the keyframe before it), not by reading the 8
    frames before it, and the frames it gives are the same."""
    decoded: list[int] = []
    frames_of = VideoSource.frames

    def counted(source):
        for frame in frames_of(source):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(VideoSource, "frames", counted)
    cheap = {**OPTIONS, "iterations": 2, "first_iterations": 2, "min_iterations": 1}
    counts = {}
    for exact in (video_module.EXACT_SEEK, ()):
        monkeypatch.setattr(video_module, "EXACT_SEEK", exact)
        decoded.clear()
        summary = framestyle.run(long_clip, style, tmp_path / f"out-{bool(exact)}", batch_size=2, weights=weights,
                                 host=PluginHost(autoload=False), **cheap)
        assert summary.exit_code == 0
        counts[bool(exact)] = len(decoded)
    assert counts[False] - counts[True] >= 8, counts
    sought, read = frames(tmp_path / "out-True"), frames(tmp_path / "out-False")
    assert len(sought) == 24 and all(np.array_equal(a, b) for a, b in zip(sought, read, strict=True))


def decoded(path: Path) -> np.ndarray:
    return np.stack(decoded_frames(path)).astype(np.float32)


@pytest.fixture(scope="module")
def sound_clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("sound") / "clip.mp4", frames=24, audio=True)


def chunked_run(clip: Path, style: Path, out: Path, weights, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(splitting, "CHUNK", chunk)
    cheap = {**OPTIONS, "writer": None, "iterations": 2, "first_iterations": 2, "min_iterations": 1}
    summary = framestyle.run(clip, style, out, batch_size=2, weights=weights, host=PluginHost(autoload=False), **cheap)
    assert summary.exit_code == 0, summary.failed


def test_a_split_video_is_encoded_in_chunks_and_joined_with_its_sound(sound_clip, style, weights, tmp_path,
                                                                      monkeypatch):
    """Chunks of 8 frames, each encoded apart (on any worker), joined by
    stream copy: every frame, the source's rate and sound, and the picture
    the one-chunk encode gives up to the encoder's own rounding."""
    chunked_run(sound_clip, style, tmp_path / "chunks.mp4", weights, 8, monkeypatch)
    chunked_run(sound_clip, style, tmp_path / "whole.mp4", weights, 1000, monkeypatch)
    assert read_video_info(tmp_path / "chunks.mp4") == read_video_info(sound_clip)  # 24 frames, its rate, sound
    assert abs(stream_seconds(tmp_path / "chunks.mp4", "v") - stream_seconds(sound_clip, "v")) < 1 / 30
    joined, whole = decoded(tmp_path / "chunks.mp4"), decoded(tmp_path / "whole.mp4")
    assert joined.shape == whole.shape
    # Each frame where it belongs: a few levels from the one-chunk encode's
    # (x264 decides differently where a chunk starts; measured 0.5-3.7 at
    # this size), far from its neighbour's (13-31).
    same = [np.abs(a - b).mean() for a, b in zip(joined, whole, strict=True)]
    shifted = [np.abs(a - b).mean() for a, b in zip(joined[1:], whole[:-1], strict=True)]
    assert max(same) < 6 and max(same) < min(shifted) / 2, (same, shifted)
    assert not list(tmp_path.glob(".*framestyle-work"))  # the chunks went with the kept frames


def test_a_join_that_failed_reuses_every_chunk(sound_clip, style, weights, tmp_path, monkeypatch):
    """The join fails (a full disk, say): the rerun encodes no chunk again,
    it joins them, into the very bytes of a run that never failed."""
    encoded: list[Path] = []
    real_chunk, real_join = builtin_video.video_chunk, builtin_video.video_join

    def failing_join(fmt, chunks, target, info):
        raise OSError(28, "No space left on device")

    def counted_chunk(fmt, target, info, crf=None):
        encoded.append(target)
        return real_chunk(fmt, target, info, crf)

    monkeypatch.setattr(builtin_video, "video_chunk", counted_chunk)
    monkeypatch.setattr(builtin_video, "video_join", failing_join)
    monkeypatch.setattr(splitting, "CHUNK", 8)
    cheap = {**OPTIONS, "writer": None, "iterations": 2, "first_iterations": 2, "min_iterations": 1}
    out = tmp_path / "out.mp4"
    failed = framestyle.run(sound_clip, style, out, batch_size=2, weights=weights, host=PluginHost(autoload=False),
                            **cheap)
    assert failed.exit_code == 1 and "No space left on device" in failed.failed[0][1] and not out.exists()
    assert len(encoded) == 3
    monkeypatch.setattr(builtin_video, "video_join", real_join)
    chunked_run(sound_clip, style, out, weights, 8, monkeypatch)
    assert len(encoded) == 3  # none again
    chunked_run(sound_clip, style, tmp_path / "straight.mp4", weights, 8, monkeypatch)
    assert out.read_bytes() == (tmp_path / "straight.mp4").read_bytes()
