from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence

import framestyle
from framestyle.host import PluginHost
from framestyle.testing import run_with_plugin, tiny_image, tiny_video, tiny_weights

framestyle_gif = pytest.importorskip(
    "framestyle_gif", reason="install with: pip install -e plugins/framestyle-gif")


@pytest.mark.parametrize("fps,delay", [(10, 100), (25, 40)])
def test_video_becomes_an_animated_gif_with_the_source_timing(tmp_path, fps, delay):
    clip = tiny_video(tmp_path / "clip.avi", frames=3, fps=fps)
    result = run_with_plugin(framestyle_gif, [clip], tmp_path / "out.gif", weights=tiny_weights())
    assert result.exit_code == 0
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 3
        delays = []
        for index in range(gif.n_frames):
            gif.seek(index)
            delays.append(gif.info["duration"])
    assert delays == [delay] * 3


def test_animated_webp_by_writer_name(tmp_path):
    clip = tiny_video(tmp_path / "clip.avi", frames=4, fps=20)
    result = run_with_plugin(framestyle_gif, [clip], tmp_path / "out.webp", weights=tiny_weights(),
                             writer="webp-animation")
    assert result.exit_code == 0
    with Image.open(tmp_path / "out.webp") as webp:
        assert webp.n_frames == 4 and webp.is_animated


def test_nothing_is_left_under_the_final_name_when_a_run_fails(tmp_path):
    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"not a video")
    result = run_with_plugin(framestyle_gif, [clip], tmp_path / "out.gif", weights=tiny_weights())
    assert result.exit_code == 1 and not (tmp_path / "out.gif").exists()


class FramesSeen:
    """Records each frame's end; stops the run (as Ctrl-C would) after
    ``stop_after`` stylised frames."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.ended: list[tuple[int, bool]] = []

    @framestyle.hookimpl
    def on_frame_end(self, event):
        self.ended.append((event.index, event.reused))
        if sum(not reused for _, reused in self.ended) == self.stop_after:
            raise KeyboardInterrupt


def gif_run(clip, out, seen, **options):
    host = PluginHost(autoload=False)
    host.register(framestyle_gif, "gif")
    host.register(seen, "seen")
    style = tiny_image(out.parent / "style.png", index=5)
    return framestyle.run([clip], style, out, host=host, weights=WEIGHTS, size=48, iterations=3,
                          first_iterations=3, min_iterations=1, verbosity=-1, **options)


def gif_frames(path, fps: int = 10):
    """The frames as played at ``fps``: a GIF encoder folds a frame equal to
    the one before into that one's display time (tiny weights and few
    iterations make neighbours equal on some CPUs), so each stored frame
    counts as many times as its duration holds a frame's."""
    with Image.open(path) as gif:
        shown = [(np.asarray(frame.convert("RGB")), frame.info["duration"]) for frame in ImageSequence.Iterator(gif)]
    return [frame for frame, duration in shown for _ in range(round(duration * fps / 1000))]


WEIGHTS = tiny_weights()


def test_an_interrupted_gif_resumes_from_its_finished_frames(tmp_path):
    """The writer keeps nothing: the engine's kept frames give it resume."""
    clip = tiny_video(tmp_path / "clip.avi", frames=6)
    assert gif_run(clip, tmp_path / "whole.gif", FramesSeen()).exit_code == 0
    assert gif_run(clip, tmp_path / "out.gif", FramesSeen(stop_after=3)).exit_code == 130
    assert not (tmp_path / "out.gif").exists()
    again = FramesSeen()
    assert gif_run(clip, tmp_path / "out.gif", again).exit_code == 0
    assert [reused for _, reused in again.ended] == [True] * 3 + [False] * 3
    resumed, whole = gif_frames(tmp_path / "out.gif"), gif_frames(tmp_path / "whole.gif")
    assert len(resumed) == 6 and all(np.array_equal(a, b) for a, b in zip(resumed, whole, strict=True))
    assert not list(tmp_path.glob(".*framestyle-work"))  # the kept frames went with completion


def test_a_gif_takes_a_video_split_into_segments(tmp_path):
    clip = tiny_video(tmp_path / "clip.avi", frames=24)
    seen = FramesSeen()
    assert gif_run(clip, tmp_path / "out.gif", seen, batch_size=2).exit_code == 0
    order = [index for index, _ in seen.ended]
    assert sorted(order) == list(range(24)) and order != sorted(order)  # two segments side by side
    assert len(gif_frames(tmp_path / "out.gif")) == 24
