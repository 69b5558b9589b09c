"""A run is a plan of independent units: any executor gives the same bytes.

The subprocess executor runs each unit in a fresh Python process, handed
only the pickled unit and the run's spec; its outputs must equal the local
executor's byte for byte, on a folder of images (batched by size) and on a
video split into segments (cross-faded where they meet, then assembled).
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import replace

import pytest
from helpers import make_video, outputs, sample, save

import framestyle
from framestyle.engine.driver import Driver
from framestyle.engine.units import AssembleVideo, EncodeChunk, ImageGroup, VideoSegment
from framestyle.host import PluginHost
from framestyle.settings import Settings
from framestyle.types import ExecutorSpec


@pytest.fixture
def job(tmp_path):
    """Three photos, two of one working size, and a 16-frame clip that
    --batch-size 2 splits into two overlapping segments."""
    folder = tmp_path / "in"
    save(folder / "a.png", sample("chelsea.jpg", 40))
    save(folder / "b.png", sample("coffee.jpg", 40))
    save(folder / "c.png", sample("rocket.jpg", 40))
    make_video(folder / "clip.mp4", frames=16, width=48, height=32, audio=True)
    save(tmp_path / "style.png", sample("swirls.jpg", 40))
    return Settings(inputs=[folder], style=[tmp_path / "style.png"], size=32, iterations=4, first_iterations=6,
                    min_iterations=2, batch_size=2, precision="fp32", verbosity=-1, margin=0)


def run(settings, host=None, weights=None):
    return Driver(settings, host or PluginHost(autoload=False), weights).run()


def test_the_plan_is_units_that_pickle(job, tmp_path, weights):
    units = Driver(replace(job, output=tmp_path / "out"), PluginHost(autoload=False), weights).plan.units
    kinds = [type(unit).__name__ for unit in units]
    assert kinds.count("VideoSegment") == 2 and kinds.count("EncodeChunk") == 1 and kinds.count("AssembleVideo") == 1
    groups = [unit for unit in units if isinstance(unit, ImageGroup)]
    assert sorted(len(group.items) for group in groups) == [1, 2]  # a and b share a size; c does not
    assemble = next(unit for unit in units if isinstance(unit, AssembleVideo))
    chunk = next(unit for unit in units if isinstance(unit, EncodeChunk))
    segments = [unit for unit in units if isinstance(unit, VideoSegment)]
    assert set(chunk.needs) == {segment.uid for segment in segments}  # its frames are both segments'
    assert assemble.needs == (chunk.uid,) and assemble.chunks == ((0, segments[-1].segment.end),)
    assert segments[1].segment.head and segments[0].later == segments[1].segment  # they overlap
    assert pickle.loads(pickle.dumps(units)) == units


@pytest.fixture
def two_lanes(monkeypatch):
    """Two intra-op threads, as on the 2-core machines, whatever share of
    the cores a pytest-xdist worker has: with one, passes never run side by
    side and a unit's pass layout could differ from the local run's unseen.
    The worker processes the test starts get two as well: they inherit the
    xdist worker's OMP_NUM_THREADS=1 otherwise, and on some CPUs fp32
    kernels' last bits depend on the thread count.
    A pool of pass threads is made first, as an earlier test in the worker
    may have made it: once, it went on computing with the new count and the
    video's bits depended on the tests before (optimize.run_pass_on)."""
    import torch

    from framestyle.transfer.optimize import worker_pool

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    threads = torch.get_num_threads()
    list(worker_pool(2).map(time.sleep, [0.1, 0.1]))  # both threads started
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_each_unit_in_a_process_of_its_own_gives_the_local_bytes(job, tmp_path, weights, two_lanes):
    """The subprocess executor runs two workers at once: the segments keep
    their frames in one store at the same time, in two processes. VGG-19's
    default layers, not the shallow ones: a different pass layout changes
    only the deep convolutions' last bits."""
    (job.inputs[0] / "c.png").unlink()  # a group of two is enough; each process costs ~3 s
    local, apart = tmp_path / "local", tmp_path / "apart"
    for executor, out in (("local", local), ("subprocess", apart)):
        summary = run(replace(job, output=out, executor=executor), weights=weights)
        assert summary.exit_code == 0 and summary.done == 3, (executor, summary)
    written = outputs(local)
    assert written == outputs(apart) == ["a.png", "b.png", "clip.mp4", "clip.mp4.report.json"]
    for name in written[:-1]:
        same = (local / name).read_bytes() == (apart / name).read_bytes()
        assert same, (name, frames_apart(local / "clip.mp4.report.json", apart / "clip.mp4.report.json"))


def frames_apart(first, second) -> list[tuple[int, tuple, tuple | None]]:
    """Each frame whose (iterations, loss) differ between two video reports,
    with both: where two runs went apart (the encoder's look-ahead spreads one
    frame's difference in the video's bytes to the frames before it)."""
    def figures(path):
        frames = json.loads(path.read_text())["frames"]
        return {frame["index"]: (frame["iterations"], frame["loss"]) for frame in frames}

    a, b = figures(first), figures(second)
    return [(index, a[index], b.get(index)) for index in sorted(a) if a[index] != b.get(index)]


def test_a_pass_runs_on_its_share_of_the_threads_whatever_its_thread_had(monkeypatch):
    """torch keeps the intra-op thread count per thread: a pass thread
    sets its share before every pass, or its bits follow whichever count
    that thread had (the equal-bytes test above cannot tell when both sides
    happen to match)."""
    import torch

    from framestyle.transfer import optimize

    counts: list[int] = []
    monkeypatch.setattr(optimize, "run_pass", lambda group, encode: counts.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        for had, share in ((2, 1), (1, 2)):
            torch.set_num_threads(had)
            optimize.run_pass_on(share, [], lambda image, layers: {})
    finally:
        torch.set_num_threads(before)
    assert counts == [1, 2]


def test_an_executor_plugin_runs_the_units_its_own_way(job, tmp_path, weights):
    """A third-party executor: each unit pickled, then run alone, one after
    another, with a context of its own; the outputs are complete."""
    ran: list[str] = []

    class OneByOne:
        def run(self, units, session):
            from framestyle.engine.runner.context import UnitContext
            from framestyle.engine.runner.unit import run_unit

            context = UnitContext.build(session.spec)
            for unit in units:
                ran.append(unit.uid)
                run_unit(pickle.loads(pickle.dumps(unit)), context, session.emit)

    class Plugin:
        @framestyle.hookimpl
        def register_executors(self, register):
            register(ExecutorSpec("one-by-one", OneByOne, in_process=True))

    (job.inputs[0] / "clip.mp4").unlink()  # the images make the point
    host = PluginHost(autoload=False)
    host.register(Plugin(), "one-by-one")
    summary = run(replace(job, output=tmp_path / "out", executor="one-by-one"), host, weights)
    assert summary.exit_code == 0 and summary.done == 3
    assert sorted(ran) == ["images:1,2", "images:3"]
    assert outputs(tmp_path / "out") == ["a.png", "b.png", "c.png"]
