from __future__ import annotations

import pytest
from PIL import Image

from framestyle.testing import run_with_plugin, tiny_video, tiny_weights

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
