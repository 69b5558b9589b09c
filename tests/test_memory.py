"""Memory stays bounded on a long video: no per-frame growth."""

from __future__ import annotations

import os
import sys

import pytest
from helpers import make_video, sample, save

import framestyle
from framestyle.host import PluginHost


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_resident_memory_does_not_grow_with_the_number_of_frames(tmp_path, weights):
    frames = 160
    clip = make_video(tmp_path / "long.mp4", frames=frames, width=48, height=32, audio=False)
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    resident: list[int] = []

    class Meter:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            resident.append(resident_bytes())

    host = PluginHost(autoload=False)
    host.register(Meter(), "meter")
    summary = framestyle.run(clip, style, tmp_path / "out.mp4", host=host, weights=weights, size=32,
                             iterations=2, first_iterations=2, min_iterations=1)
    assert summary.exit_code == 0 and len(resident) == frames
    # After the first frames have warmed every cache, the last 120 frames may
    # not add more than 4 MiB in all, 34 KiB a frame (a leak of one frame per
    # frame would be 48x32x3 bytes and more for tensors, flow fields and masks).
    growth = max(resident[40:]) - resident[40]
    print(f"resident memory: {resident[0] / 2**20:.0f} MiB after frame 1, {resident[40] / 2**20:.0f} MiB "
          f"after frame 41, at most {max(resident[40:]) / 2**20:.0f} MiB later")
    assert growth < 4 * 2**20, f"grew by {growth / 2**20:.1f} MiB over {frames - 40} frames"
