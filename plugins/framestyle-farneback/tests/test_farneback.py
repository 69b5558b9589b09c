from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framestyle.testing import run_with_plugin, tiny_video, tiny_weights

framestyle_farneback = pytest.importorskip(
    "framestyle_farneback", reason="install with: pip install -e plugins/framestyle-farneback")


def test_the_flow_finds_a_known_shift():
    photo = Path(__file__).resolve().parents[3] / "samples" / "photos" / "chelsea.jpg"
    picture = np.asarray(Image.open(photo).convert("RGB").resize((160, 106)))
    source, target = picture[10:90, 10:140], picture[13:93, 15:145]  # target: source moved 5 left, 3 up
    flow = framestyle_farneback.farneback(source, target)
    middle = flow[20:60, 30:100]  # away from the edges, where the content leaves the frame
    assert flow.shape == (80, 130, 2) and flow.dtype == np.float32
    assert np.allclose(np.median(middle.reshape(-1, 2), axis=0), [-5, -3], atol=0.25)


def test_a_video_runs_with_it_and_its_flow_decides_the_warp_error(tmp_path):
    clip = tiny_video(tmp_path / "clip.avi", frames=4)
    reports = {}
    for flow in ("dis", "farneback"):
        out = tmp_path / f"{flow}.mp4"
        end = run_with_plugin(framestyle_farneback, [clip], out, weights=tiny_weights(), flow=flow,
                              size=48, iterations=4)
        assert end.exit_code == 0
        reports[flow] = json.loads(out.with_name(out.name + ".report.json").read_text())["frames"]
    floors = {flow: [frame["source_warp_error"] for frame in frames[1:]] for flow, frames in reports.items()}
    assert all(value is not None for values in floors.values() for value in values)
    assert floors["dis"] != floors["farneback"]  # the source's own E_warp is measured with the flow chosen
