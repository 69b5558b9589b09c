from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from framestyle.media.video import read_video_info
from framestyle.testing import pattern, run_with_plugin, tiny_weights

framestyle_gifsource = pytest.importorskip(
    "framestyle_gifsource", reason="install with: pip install -e plugins/framestyle-gifsource")


def test_gif_frames_reach_the_writer_at_the_gifs_rate(tmp_path):
    frames = [Image.fromarray(pattern(i)) for i in range(4)]
    gif = tmp_path / "in" / "anim.gif"
    gif.parent.mkdir()
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50, loop=0)
    result = run_with_plugin(framestyle_gifsource, [gif.parent], tmp_path / "out", weights=tiny_weights())
    assert result.exit_code == 0 and result.done == 1
    count, fps, _ = read_video_info(tmp_path / "out" / "anim.mp4")  # a video source becomes an mp4
    assert count == 4 and fps == Fraction(20)


def test_frames_are_decoded_in_order(tmp_path):
    frames = [Image.fromarray(pattern(i)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    source = framestyle_gifsource.GifSource(gif)
    decoded = list(source.frames())
    source.close()
    assert source.info.kind == "video" and source.info.fps == 10.0
    # The yellow square moves 2 px right per frame: its left edge tells the order.
    edges = [int(np.argmax((f[8, :, 0] > 200) & (f[8, :, 1] > 200) & (f[8, :, 2] < 90))) for f in decoded]
    assert edges == sorted(edges) and len(set(edges)) == 3
