"""Several frames optimised together (--batch-size): each exactly as it
would be alone, with its own stopping point, and out of memory survived."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHALLOW, make_video, sample, save

import framestyle
import framestyle.transfer.optimize
from framestyle.api import run
from framestyle.engine.runtime import Runtime
from framestyle.host import PluginHost
from framestyle.media.images import read_image, resize
from framestyle.transfer.losses import ContentLoss
from framestyle.transfer.optimize import StopRule, Task, WeightedLoss, step_together

# On the CPU whatever the machine has: the pass layouts asserted below are the
# CPU's (on CUDA the frames of one size share one pass).
COMMON = dict(size=48, iterations=12, precision="fp32", scales=2, verbosity=-1, device="cpu", **SHALLOW)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five photos: three 48x36 after resizing, two 36x48 (portrait)."""
    root = tmp_path / "in"
    chelsea, rocket, coffee = sample("chelsea.jpg", 96), sample("rocket.jpg", 96), sample("coffee.jpg", 96)
    save(root / "a.png", resize(chelsea, 64, 48))
    save(root / "b.png", resize(coffee, 64, 48))
    save(root / "c.png", resize(rocket, 64, 48))
    save(root / "d.png", resize(rocket, 48, 64))
    save(root / "e.png", resize(chelsea, 48, 64))
    save(tmp_path / "style.jpg", sample("swirls.jpg", 40))
    return root


def record_passes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, int]]:
    """Each VGG-19 pass: its number of images, the thread it ran in and that
    thread's intra-op threads. Runs as if on 2 cores, whatever this machine has."""
    seen: list[tuple[int, str, int]] = []
    original = framestyle.transfer.optimize.run_pass

    def spy(group, encode):
        seen.append((len(group), threading.current_thread().name.split("_")[0], torch.get_num_threads()))
        return original(group, encode)

    monkeypatch.setattr(framestyle.transfer.optimize, "run_pass", spy)
    monkeypatch.setattr(framestyle.transfer.optimize, "cpu_lanes", lambda: 2)
    return seen


@pytest.fixture
def one_pass_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passes as on a GPU: the frames of one size stacked in one pass, so
    that out of memory (faked below per pass) depends on the batch size."""
    monkeypatch.setattr(framestyle.transfer.optimize, "cpu_layout", lambda task: False)


def results(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_image(p).astype(float) for p in sorted(folder.glob("*.png"))}


def final_losses(folder: Path) -> dict[str, float]:
    items = json.loads((folder / "framestyle-run.json").read_text())["items"]
    return {Path(item["output"]).name: item["loss"] for item in items}


def test_a_batch_gives_each_image_what_it_gets_alone(folder, tmp_path, weights, monkeypatch):
    """Batched, every pixel is what it is alone (rounding aside). Adam, as its
    steps do not magnify 1e-7 rounding differences the way L-BFGS's do
    (without a line search); the batching itself is the optimizer's business
    nowhere (each task steps on its own)."""
    style = tmp_path / "style.jpg"
    options = {**COMMON, "optimizer": "adam"}
    alone = run(folder, style, tmp_path / "alone", batch_size=1, host=PluginHost(autoload=False),
                weights=weights, **options)
    passes = record_passes(monkeypatch)
    together = run(folder, style, tmp_path / "together", batch_size=3, host=PluginHost(autoload=False),
                   weights=weights, **options)
    monkeypatch.undo()
    assert alone.exit_code == together.exit_code == 0
    # 12 iterations of the three landscape images, then of the two portrait ones, one image a
    # pass, spread over the 2 cores: side by side in worker threads of one intra-op thread each.
    assert sorted(size for size, _, _ in passes) == [1] * 60
    if torch.get_num_threads() <= 2:  # one intra-op thread each (more cores: more each)
        assert {(thread, threads) for _, thread, threads in passes} == {("framestyle-pass", 1)}
    first, second = results(tmp_path / "alone"), results(tmp_path / "together")
    assert sorted(first) == sorted(second) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    # A few pixels may differ by a level or two (Adam's steps are sign-like where the gradient is ~0).
    for name in first:
        difference = np.abs(first[name] - second[name])
        assert difference.mean() < 0.25 and difference.max() <= 4, name
    losses_alone, losses_together = final_losses(tmp_path / "alone"), final_losses(tmp_path / "together")
    for name, loss in losses_alone.items():
        assert losses_together[name] == pytest.approx(loss, rel=0.1), name


def test_frames_in_one_batch_stop_on_their_own(encoder):
    """A task that converges leaves the batch; the others go on."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 32, 32, generator=generator)
    goal = encoder(target, ["relu2_1"])["relu2_1"]

    def task(init: torch.Tensor, budget: int, stop: StopRule | None) -> Task:
        losses = [WeightedLoss("content", 1.0, ContentLoss("relu2_1", goal))]
        return Task(init, losses, encoder, lambda p: torch.optim.Adam(p, lr=0.02), budget, stop=stop)

    near = task(target.clone(), 50, StopRule(minimum=3, tolerance=0.5))  # already there: stops early
    far = task(torch.rand(1, 3, 32, 32, generator=generator), 30, None)
    rounds = 0
    while not (near.finished and far.finished):
        step_together([near, far], encoder)
        rounds += 1
    assert near.done < 15 and far.done == 30 and rounds == 30
    assert far.result().loss < 0.5 * far.history[0]


def test_out_of_memory_in_one_of_the_passes_side_by_side_is_raised_after_both_end(encoder, monkeypatch):
    """Passes in worker threads: the error of one reaches the caller (to
    shrink the batch), and only once the other pass has finished too."""
    monkeypatch.setattr(framestyle.transfer.optimize, "cpu_lanes", lambda: 2)
    generator = torch.Generator().manual_seed(0)
    goal = encoder(torch.rand(1, 3, 32, 32, generator=generator), ["relu2_1"])["relu2_1"]
    failing, fine = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)

    def encode(image, layers):
        if torch.equal(image.detach(), failing):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return encoder(image, layers)

    def task(init: torch.Tensor) -> Task:
        losses = [WeightedLoss("content", 1.0, ContentLoss("relu2_1", goal))]
        return Task(init, losses, encode, lambda p: torch.optim.Adam(p, lr=0.02), 5)

    doomed, other = task(failing), task(fine)
    with pytest.raises(torch.OutOfMemoryError):
        step_together([doomed, other], encode)
    assert other.image.grad is not None and float(other.image.grad.abs().sum()) > 0
    assert doomed.done == other.done == 0  # no step was taken: the caller retries this iteration


def test_out_of_memory_halves_the_batch_and_loses_nothing(folder, tmp_path, weights, monkeypatch, caplog,
                                                          one_pass_at_a_time):
    style = tmp_path / "style.jpg"
    run(folder, style, tmp_path / "alone", batch_size=1, host=PluginHost(autoload=False),
                weights=weights, **COMMON)
    original = Runtime.encode

    def small_memory(self, image, layers):
        if image.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, image, layers)

    monkeypatch.setattr(Runtime, "encode", small_memory)
    with caplog.at_level(logging.WARNING, logger="framestyle"):
        summary = run(folder, style, tmp_path / "out", batch_size=4, host=PluginHost(autoload=False),
                      weights=weights, **COMMON)
    assert summary.exit_code == 0 and summary.done == 5
    warnings = [r.getMessage() for r in caplog.records]
    assert "out of memory with 4 frame(s) in a batch; continuing with 2 (finished frames are kept)" in warnings
    assert "out of memory with 2 frame(s) in a batch; continuing with 1 (finished frames are kept)" in warnings
    assert sorted(results(tmp_path / "out")) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    for name, loss in final_losses(tmp_path / "alone").items():
        assert final_losses(tmp_path / "out")[name] == pytest.approx(loss, rel=0.1), name


def test_out_of_memory_with_one_frame_fails_that_input_only(folder, tmp_path, weights, monkeypatch):
    original = Runtime.encode

    def no_memory_for_large(self, image, layers):
        if image.shape[-2:] == (36, 48):  # the landscape ones
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, image, layers)

    monkeypatch.setattr(Runtime, "encode", no_memory_for_large)
    summary = run(folder, tmp_path / "style.jpg", tmp_path / "out", batch_size=2, host=PluginHost(autoload=False),
                  weights=weights, **{**COMMON, "scales": 1})
    assert summary.done == 2 and summary.exit_code == 1
    assert sorted(path.name for path, _ in summary.failed) == ["a.png", "b.png", "c.png"]
    assert all("out of memory" in message for _, message in summary.failed)


def test_the_display_shows_each_frame_in_flight_and_the_whole_job(folder, tmp_path, weights, monkeypatch):
    """One row per frame being optimised (iterations, loss) under a bar for
    the whole job counted in frames, whose total the engine gives up front."""
    from framestyle.builtin import progress
    from framestyle.events import FrameEnd, FrameStart, RunStart, SourceEnd, SourceStart, Step
    from framestyle.settings import Settings
    from framestyle.types import SourceInfo

    starts: list[RunStart] = []

    class Watch:
        @framestyle.hookimpl
        def on_run_start(self, event):
            starts.append(event)

    host = PluginHost(autoload=False)
    host.register(Watch(), "watch")
    clip = make_video(tmp_path / "clip.mp4", frames=5, audio=False)
    run([folder, clip], tmp_path / "style.jpg", tmp_path / "out", iterations=0, host=host, weights=weights,
        verbosity=-1)
    assert starts[0].frames == 5 + 5  # five images, five video frames

    reporter = progress.RichReporter(RunStart(Settings(), 2, "cpu", "test", frames=4))
    try:
        a, b = Path("a.png"), Path("clip.mp4")
        reporter.source_start(SourceStart(1, 2, a, Path("out/a.png"), SourceInfo(a, "image", 8, 8, 1)))
        reporter.source_start(SourceStart(2, 2, b, Path("out/b.mp4"), SourceInfo(b, "video", 8, 8, 3, 25.0)))
        reporter.frame_start(FrameStart(a, 0, 1, 8, 8, 10))
        reporter.frame_start(FrameStart(b, 1, 3, 8, 8, 20))
        reporter.step(Step(a, 0, 4, 10, 2.5, {}))
        reporter.step(Step(b, 1, 7, 20, 1.25, {}))
        rows = {task.description.strip(): task for task in reporter.progress.tasks}
        # A row shows its iterations; its bar (and ETA) counts the work they did.
        assert rows["a.png"].fields["count"] == "4/10" and rows["a.png"].completed / rows["a.png"].total == 0.4
        assert rows["a.png"].fields["detail"] == "loss 2.5"
        clip_row = rows["clip.mp4 frame 2"]
        assert clip_row.fields["count"] == "7/20" and clip_row.fields["detail"] == "loss 1.25"
        reporter.frame_end(FrameEnd(a, 0, 10, 1.0, 2.0, {}))
        reporter.source_end(SourceEnd(1, a, Path("out/a.png"), "done", 1, 1.0))
        job = reporter.progress.tasks[0]
        assert [t.description.strip() for t in reporter.progress.tasks] == ["job (frames)", "clip.mp4 frame 2"]
        assert job.total == 4 and job.fields["count"] == "1/4" and job.fields["detail"] == "1/2 inputs"
        assert job.completed == pytest.approx(1 + 7 / 20)  # the frame in flight by its share of work done
        reporter.source_end(SourceEnd(2, b, Path("out/b.mp4"), "failed", 0, 1.0, "broken"))
        assert job.completed == 4 and len(reporter.progress.tasks) == 1  # its rows are gone, its frames counted
    finally:
        reporter.progress.stop()


def test_the_terminal_shows_a_row_for_the_first_frames_in_flight_and_counts_the_rest():
    """A cluster has thousands of frames in flight: a dozen rows, and one that counts the others."""
    from framestyle.builtin import progress
    from framestyle.events import FrameEnd, FrameStart, RunStart, SourceEnd, SourceStart, Step
    from framestyle.settings import Settings
    from framestyle.types import SourceInfo

    inputs = [Path(f"{n}.png") for n in range(40)]
    reporter = progress.RichReporter(RunStart(Settings(), 40, "cpu", "test", frames=40))
    try:
        for number, path in enumerate(inputs, start=1):
            reporter.source_start(SourceStart(number, 40, path, Path("out") / path, SourceInfo(path, "image", 8, 8)))
            reporter.frame_start(FrameStart(path, 0, 1, 8, 8, 10))
            reporter.step(Step(path, 0, 3, 10, 1.0, {}))
        rows = [task.description.strip() for task in reporter.progress.tasks]
        assert rows == ["job (frames)", *(path.name for path in inputs[:progress.ROWS]),
                        f"and {40 - progress.ROWS} more frame(s) in flight"]
        reporter.frame_end(FrameEnd(inputs[0], 0, 10, 1.0, 1.0, {}))  # shown
        reporter.frame_end(FrameEnd(inputs[-1], 0, 10, 1.0, 1.0, {}))  # counted
        reporter.source_end(SourceEnd(39, inputs[-2], Path("out") / inputs[-2], "failed", 0, 1.0, "broken"))
        rows = [task.description.strip() for task in reporter.progress.tasks]
        assert len(rows) == progress.ROWS + 1 and rows[-1] == f"and {40 - progress.ROWS - 2} more frame(s) in flight"
    finally:
        reporter.progress.stop()


@pytest.mark.parametrize("where, size, raise_at, message", [
    ("a frame starts", 48, 3, "out of memory with 3 frame(s) in a batch; continuing with 1"),
    ("a frame moves to its next level", 64, 4, "out of memory with 3 frame(s) in a batch; continuing with 1"),
])
def test_out_of_memory_building_a_frames_targets_shrinks_the_batch(folder, tmp_path, weights, monkeypatch, caplog,
                                                                   where, size, raise_at, message):
    """The content target is computed when a frame (or a pyramid level)
    starts; out of memory there, with other frames in flight, shrinks the
    batch and the frame starts again later, losing nothing."""
    options = {**COMMON, "size": size, "scales": 2}
    run(folder, tmp_path / "style.jpg", tmp_path / "alone", batch_size=1, host=PluginHost(autoload=False),
        weights=weights, **options)
    original, calls = Runtime.encode, []

    def tight(self, image, layers):
        if list(layers) == [COMMON["content_layer"]] and not image.requires_grad:  # a content target
            calls.append(image.shape)
            if len(calls) == raise_at:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return original(self, image, layers)

    started: list[str] = []

    class Watch:
        @framestyle.hookimpl
        def on_frame_start(self, event):
            started.append(event.path.name)

    monkeypatch.setattr(Runtime, "encode", tight)
    host = PluginHost(autoload=False)
    host.register(Watch(), "watch")
    with caplog.at_level(logging.WARNING, logger="framestyle"):
        summary = run(folder, tmp_path / "style.jpg", tmp_path / "out", batch_size=3, host=host, weights=weights,
                      **options)
    assert summary.exit_code == 0 and summary.done == 5, where
    assert sorted(started) == ["a.png", "b.png", "c.png", "d.png", "e.png"]  # each announced once, retried or not
    # The failed call was a first level's target, or the full-size level's.
    assert (calls[raise_at - 1][-2:] == calls[0][-2:]) == (where == "a frame starts")
    assert any(message in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    for name, loss in final_losses(tmp_path / "alone").items():
        assert final_losses(tmp_path / "out")[name] == pytest.approx(loss, rel=0.1), (where, name)
