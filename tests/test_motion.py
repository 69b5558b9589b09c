"""Optical flow, the consistency mask, warping, scene cuts and E_warp."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from helpers import make_video, sample

import framestyle
from framestyle.builtin.stylize import init_image
from framestyle.media.motion import estimate, warp, warp_error
from framestyle.settings import Settings
from framestyle.testing import run_with_plugin, tiny_weights
from framestyle.transfer.pixels import to_tensor
from framestyle.types import FlowSpec, FrameJob, SourceInfo


def test_flow_warps_the_previous_frame_onto_the_current_one():
    photo = sample("coffee.jpg", 160)
    previous, current = photo[:, :140], photo[:, 4:144]  # the camera pans 4 px right
    motion = estimate(previous, current)
    assert not motion.cut
    assert motion.coverage > 0.8
    inner = (slice(8, -8), slice(8, -8))
    assert abs(np.median(motion.flow[inner][..., 0]) - 4) < 0.3
    warped = warp(previous, motion.flow)
    error = np.abs(warped.astype(int) - current.astype(int))[inner].mean()
    unmoved = np.abs(previous.astype(int) - current.astype(int))[inner].mean()
    assert error < 0.25 * unmoved


def test_newly_visible_pixels_are_masked_out():
    photo = sample("coffee.jpg", 160)
    previous, current = photo[:, :140], photo[:, 6:146]
    motion = estimate(previous, current)
    # The right edge of the current frame was outside the previous one.
    assert motion.mask[:, -5:].mean() < 0.2 and motion.mask[:, 20:-20].mean() > 0.8


def test_an_unrelated_frame_is_a_cut():
    a, b = sample("coffee.jpg", 96), sample("chelsea.jpg", 96)
    height, width = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    assert estimate(a[:height, :width], b[:height, :width]).cut
    assert not estimate(a, a).cut


def test_warp_error_is_zero_for_a_perfectly_consistent_pair_and_grows_with_flicker():
    """A camera pan of 4 px: the flow estimated between the two frames
    explains the second one exactly (the pan warped right), not the first
    one unmoved; noise added to the second shows."""
    photo = sample("coffee.jpg", 160)
    previous, current = photo[:, :140], photo[:, 4:144]
    motion = estimate(previous, current)
    assert warp_error(current, previous, motion) < 1e-6  # measured: 6e-9
    assert warp_error(previous, previous, motion) > 1e-2  # measured: 0.028
    noise = np.random.default_rng(0).integers(-30, 30, current.shape)
    flicker = np.clip(current.astype(int) + noise, 0, 255).astype(np.uint8)
    assert warp_error(flicker, previous, motion) > warp_error(current, previous, motion) + 1e-3


def warm_job(current: np.ndarray, motion, previous_rgb: np.ndarray, previous_source: np.ndarray | None,
             warm_from: str) -> FrameJob:
    return FrameJob(SourceInfo(Path("clip.mp4"), "video", 140, 100), 1, to_tensor(current, "cpu"),
                    Settings(warm_from=warm_from), None, motion=motion, warm=True,  # type: ignore[arg-type]
                    previous_rgb=previous_rgb, previous_source=previous_source)


def test_a_warm_frame_starts_from_the_previous_result_warped_even_where_the_flow_is_uncertain():
    """``--warm-from frame``: newly visible pixels start stylised too (the
    previous result, edge pixels carried in): filled from the raw frame
    instead, warm frames started ~50% above their converged loss and needed
    1.2-2.1x the iterations."""
    photo, styled = sample("coffee.jpg", 160), sample("chelsea.jpg", 160)
    previous, current = photo[:100, :140], photo[:100, 6:146]
    motion = estimate(previous, current)
    job = warm_job(current, motion, styled[:100, :140].copy(), previous, "frame")
    start = init_image(job)
    expected = to_tensor(warp(styled[:100, :140].copy(), motion.flow), "cpu")
    assert torch.equal(start, expected)
    uncertain = torch.from_numpy(motion.mask == 0)
    assert uncertain[:, -5:].float().mean() > 0.8  # the strip that came into view
    gap_to_frame = (start - job.content).abs().mean(1)[0][uncertain]
    assert gap_to_frame.mean() > 0.1  # not the raw frame there


def test_a_warm_frame_from_the_change_keeps_its_own_content_where_the_flow_cannot_follow():
    """``--warm-from change``: where the flow explains the
    motion the start is the previous result warped, as with ``frame``; where
    something appears that the flow cannot follow (a mouth opening, a hand
    coming in), the start has this frame's content there with the previous
    frame's stylisation on it, not the previous frame's content (a lag)."""
    photo, texture = sample("coffee.jpg", 160), sample("swirls.jpg", 160)
    previous, current = photo[:100, :140].copy(), photo[:100, 6:146].copy()
    current[40:64, 50:80] = sample("chelsea.jpg", 160)[30:54, 60:90]  # appears: no flow explains it
    change = (texture[:100, :140].astype(int) - 128) // 3  # what stylising the previous frame changed
    styled = np.clip(previous.astype(int) + change, 0, 255).astype(np.uint8)
    motion = estimate(previous, current)
    from_change = init_image(warm_job(current, motion, styled, previous, "change"))
    from_frame = init_image(warm_job(current, motion, styled, previous, "frame"))
    content = to_tensor(current, "cpu")
    kept = torch.from_numpy(motion.mask == 1)
    kept[40:64, 50:80] = False
    levels = (from_change - from_frame).abs().mean(1)[0] * 255
    assert kept.float().mean() > 0.6 and levels[kept].median() < 3, levels[kept].median()
    new = (slice(None), slice(None), slice(44, 60), slice(54, 76))
    gap_change = (from_change - content)[new].abs().mean() * 255
    gap_frame = (from_frame - content)[new].abs().mean() * 255
    stylisation = np.abs(change).mean()
    assert gap_change < 2 * stylisation < gap_frame, (gap_change, stylisation, gap_frame)


class StillFlow:
    """A flow plugin that says nothing ever moves."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, ...]] = []

    @framestyle.hookimpl
    def register_flows(self, register):
        register(FlowSpec("still", self.still, "nothing moves"))

    def still(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        self.sizes.append(source.shape)
        return np.zeros((*source.shape[:2], 2), np.float32)


def test_the_flow_a_plugin_registers_decides_warm_starts_and_cuts(tmp_path):
    """On a pan, DIS explains each frame by the last (warm); a flow that sees
    no motion leaves the pan unexplained, so every frame is a new shot."""
    clip = make_video(tmp_path / "pan.mp4", frames=5, audio=False)
    warm = {}
    for name in ("dis", "still"):
        plugin = StillFlow()
        out = tmp_path / f"{name}.mp4"
        end = run_with_plugin(plugin, [clip], out, weights=tiny_weights(), flow=name, size=48, iterations=2)
        assert end.exit_code == 0
        warm[name] = [frame["warm"] for frame in json.loads(out.with_name(out.name + ".report.json").read_text())
                      ["frames"]]
        assert plugin.sizes == ([] if name == "dis" else [(32, 48, 3)] * 8)  # both ways, for each pair
    assert warm == {"dis": [False, True, True, True, True], "still": [False] * 5}


def test_an_unknown_flow_is_refused_before_any_work(tmp_path, capsys):
    from framestyle.cli import main

    assert main(["run", "clip.mp4", "--style", "s.png", "-o", str(tmp_path / "o.mp4"), "--flow", "dsi"]) == 2
    assert "unknown flow 'dsi'" in capsys.readouterr().err
