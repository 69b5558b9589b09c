"""Memory stays bounded on a long video: no per-frame growth."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

import pytest
import torch
from helpers import SHALLOW, make_video, sample, save

import framestyle
from framestyle.host import PluginHost


def live_tensors() -> tuple[int, int]:
    """How many tensors Python holds, and their storages' bytes."""
    tensors = [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor)]
    return len(tensors), sum(t.untyped_storage().nbytes() for t in tensors)


def resident_bytes() -> int:
    """Resident memory once the C allocator has returned its free pages: what
    is in use, not what fragmentation left behind (which varies run to run)."""
    ctypes.CDLL(None).malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc/self/statm")
def test_memory_does_not_grow_with_the_number_of_frames(tmp_path, weights):
    frames = 80
    clip = make_video(tmp_path / "long.mp4", frames=frames, width=48, height=32, audio=False)
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    measured: dict[int, tuple[int, int, int]] = {}

    class Meter:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if event.index in (40, frames - 1):
                gc.collect()
                measured[event.index] = (*live_tensors(), resident_bytes())

    host = PluginHost(autoload=False)
    host.register(Meter(), "meter")
    summary = framestyle.run(clip, style, tmp_path / "out.mp4", host=host, weights=weights, size=32,
                             iterations=2, first_iterations=2, min_iterations=1, **SHALLOW)
    assert summary.exit_code == 0
    (count_41, bytes_41, resident_41), (count_last, bytes_last, resident_last) = measured.values()
    print(f"frame 41: {count_41} tensors, {bytes_41 / 2**20:.1f} MiB, {resident_41 / 2**20:.1f} MiB resident; "
          f"frame {frames}: {count_last}, {bytes_last / 2**20:.1f} MiB, {resident_last / 2**20:.1f} MiB")
    # Exact for what Python holds: the tensors alive at the last frame are
    # those alive at frame 41 (one frame's features or flow kept per frame
    # would add one or more each).
    assert count_last <= count_41 + 2 and bytes_last <= bytes_41 + 2**16
    # For what it does not see (an autograd graph kept alive, buffers in C++):
    # the last 40 frames may not add 4 MiB, 100 KiB a frame, where one kept
    # graph of VGG-19 at this size is ~1.5 MB (measured: 0.0-0.4 MiB in all).
    assert resident_last - resident_41 < 4 * 2**20, f"grew by {(resident_last - resident_41) / 2**20:.1f} MiB"
