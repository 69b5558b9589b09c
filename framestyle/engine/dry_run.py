"""``--dry-run``: the plan a run would follow, and how long it would take.

The plan is the real one (the same inputs, units, sizes and split a run
makes); nothing is written. The time is estimated from iterations timed on
this device at every size the plan optimises at, with the run's own
settings (layers, losses, precision, margin), times the iterations each
frame is expected to take:

- an image or a video's cold frame: each coarse-to-fine level's share of the
  budget (the samples' photos and cold frames used all of it);
- a warm video frame: :data:`WARM_ITERATIONS` times ``--min-iterations``
  (within the budget), what warm frames took on real clips.

Units run one after another on the local executor and side by side on
workers, so the estimate is the work divided among the workers.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framestyle.engine.formats import open_source
from framestyle.engine.planning.plan import Plan, working_size
from framestyle.engine.runner.context import PluginContext
from framestyle.engine.runtime import Runtime
from framestyle.engine.units import AssembleVideo, EncodeChunk, ImageGroup, Unit, VideoSegment, WholeVideo
from framestyle.host import Hooks
from framestyle.settings import Settings
from framestyle.transfer.frame import pyramid, split_iterations
from framestyle.transfer.margin import warm_margin
from framestyle.transfer.memory import plan_memory
from framestyle.types import FrameJob, SourceInfo

log = logging.getLogger("framestyle")

# Warm frames' iterations as a multiple of --min-iterations: they took 26-56
# with a minimum of 20 on the four clips of docs/performance/video-quality.md.
WARM_ITERATIONS = 2.0
# Sizes this close share a timing (a folder's photos differ by a pixel or two).
SIZE_STEP = 4
TIMED_ITERATIONS = 4  # per size, after one that warms caches up


@dataclass(frozen=True)
class Work:
    """Frames of one kind that a unit optimises: ``count`` frames of
    ``height`` x ``width``, each at ``levels`` with ``iterations`` each."""

    count: int
    height: int
    width: int
    warm: bool
    levels: tuple[tuple[int, int], ...]
    iterations: tuple[int, ...]


def image_work(height: int, width: int, settings: Settings, budget: int) -> Work:
    levels = pyramid(height, width, settings.scales)
    shares = split_iterations(budget, len(levels), settings.final_share)
    return Work(1, height, width, False, tuple(levels), tuple(shares))


def video_work(frames: int, height: int, width: int, settings: Settings) -> list[Work]:
    """A chain of ``frames``: its first frame cold, the rest warm."""
    cold = image_work(height, width, settings, settings.frame_iterations(True, False))
    warm_budget = settings.frame_iterations(True, True)
    warm = min(warm_budget, max(settings.min_iterations, round(WARM_ITERATIONS * settings.min_iterations)))
    work = [cold]
    if frames > 1:
        work.append(Work(frames - 1, height, width, True, ((height, width),), (warm,)))
    return work


@dataclass
class UnitPlan:
    line: str
    work: list[Work]


def describe_units(plan: Plan, settings: Settings, hooks: Hooks, runtime: Runtime) -> Iterator[UnitPlan]:
    for unit in plan.units:
        yield describe_unit(unit, settings, hooks, runtime)


def describe_unit(unit: Unit, settings: Settings, hooks: Hooks, runtime: Runtime) -> UnitPlan:
    if isinstance(unit, ImageGroup):
        work = []
        for item in unit.items:
            height, width = working_size(item.path, runtime)
            if height:
                work.append(image_work(height, width, settings, settings.frame_iterations(False, False)))
        names = ", ".join(item.path.name for item in unit.items)
        return UnitPlan(f"images ({len(unit.items)}): {names}; {sizes_of(work)}", work)
    if isinstance(unit, WholeVideo | VideoSegment):
        info = unit.info if isinstance(unit, VideoSegment) else video_info(unit.item.path, settings, hooks)
        (width, height), _ = runtime.sizes(info.width, info.height)
        if isinstance(unit, VideoSegment):
            frames = unit.segment.end - unit.segment.start
            what = f"segment of {unit.item.path.name}, frames {unit.segment.start + 1}-{unit.segment.end}"
        else:
            frames = max(1, info.frame_count or 1)
            what = f"video {unit.item.path.name}, {frames} frames"
            what += f" at {info.fps:.5g} fps" if info.fps else ""
        work = video_work(frames, height, width, settings)
        return UnitPlan(f"{what}: 1 cold frame, then {frames - 1} warm; {sizes_of(work)} "
                        "(each scene cut is one more cold frame)", work)
    if isinstance(unit, EncodeChunk):
        return UnitPlan(f"encode frames {unit.first + 1}-{unit.end} of {unit.item.path.name}", [])
    assert isinstance(unit, AssembleVideo)
    return UnitPlan(f"assemble {unit.item.output.name} (seams, sound)", [])


def video_info(path: Path, settings: Settings, hooks: Hooks) -> SourceInfo:
    source = open_source(path, settings, hooks)
    try:
        return source.info
    finally:
        source.close()


def sizes_of(work: list[Work]) -> str:
    """Each distinct frame size with its levels and memory per pass."""
    seen: dict[tuple[int, int], Work] = {}
    for part in work:
        seen.setdefault((part.height, part.width), part)
    if not seen:
        return "sizes read when each is opened"
    return "; ".join(f"{w}x{h} (levels {', '.join(f'{lw}x{lh}' for lh, lw in part.levels)})"
                     for (h, w), part in seen.items())


@dataclass
class Timing:
    per_iteration: float  # seconds
    per_frame: float  # set-up a frame pays at this size: targets, its first pass


class Stopwatch:
    """Seconds an iteration takes on this device at each size, measured
    once per (size, warm) by optimising a frame of that size with the run's
    settings through the real frame optimisation."""

    def __init__(self, settings: Settings, hooks: Hooks, runtime: Runtime) -> None:
        self.settings, self.hooks, self.runtime = settings, hooks, runtime
        self.timings: dict[tuple[int, int, bool], Timing] = {}
        self.seconds = 0.0

    def timing(self, height: int, width: int, warm: bool) -> Timing:
        key = (height // SIZE_STEP, width // SIZE_STEP, warm)
        if key not in self.timings:
            started = time.perf_counter()
            self.timings[key] = self.measure(height, width, warm)
            self.seconds += time.perf_counter() - started
        return self.timings[key]

    def measure(self, height: int, width: int, warm: bool) -> Timing:
        count = TIMED_ITERATIONS + 1
        settings = dataclasses.replace(self.settings, scales=1, iterations=count, first_iterations=None,
                                       min_iterations=count, preview=0,
                                       margin=warm_margin(self.settings.margin) if warm else self.settings.margin)
        stamps: list[float] = []
        context = PluginContext(self.runtime, self.hooks, lambda step: stamps.append(time.perf_counter()))
        rgb = test_pattern(height, width)
        tensor = self.runtime.prepare_content(rgb)[1]
        info = SourceInfo(Path("<timing>"), "image", width, height, frame_count=1)
        job = FrameJob(info, 0, tensor, settings, context, iterations=count)
        started = time.perf_counter()
        self.hooks.stylize(job, self.hooks.init_image(job))
        steps = [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)] or [stamps[-1] - started]
        per_iteration = statistics.median(steps)
        return Timing(per_iteration, max(0.0, stamps[0] - started - per_iteration))

    def seconds_for(self, work: Work) -> float:
        total = 0.0
        for (height, width), iterations in zip(work.levels, work.iterations, strict=True):
            timing = self.timing(height, width, work.warm)
            total += timing.per_frame + iterations * timing.per_iteration
        return work.count * total


def test_pattern(height: int, width: int) -> np.ndarray:
    """A picture with edges and texture at every scale, as photos have."""
    generator = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(9 * x + 3 * y), np.cos(7 * y - 2 * x), np.sin(5 * (x + y))], axis=-1)
    noise = generator.normal(0, 0.15, (height, width, 3))
    return ((base * 0.35 + 0.5 + noise).clip(0, 1) * 255).astype(np.uint8)


def dry_run(plan: Plan, settings: Settings, hooks: Hooks, runtime: Runtime, workers: int,
            executor: str) -> list[str]:
    """The lines ``--dry-run`` prints: the plan, unit by unit, and the estimate."""
    units = list(describe_units(plan, settings, hooks, runtime))
    precision = str(runtime.autocast).replace("torch.", "") if runtime.autocast else "fp32"
    lines = [f"plan: {plan.total} input(s), {plan.frames} frame(s) in {len(plan.units)} unit(s); "
             f"executor {executor} with {workers} worker(s); device {runtime.device} ({precision})"]
    lines += [f"  {n}. {unit.line}" for n, unit in enumerate(units, start=1)]
    lines += [f"  already complete, skipped: {item.path.name}" for item in plan.skipped]
    lines += [f"  made again, as it was made with other settings: {item.output}" for item in plan.redone]
    lines += [f"  cannot be planned: {path}: {message}" for _, path, message in plan.failed]
    sizes = [(w.height, w.width) for unit in units for w in unit.work]
    if sizes:
        height, width = max(sizes, key=lambda size: size[0] * size[1])
        margin = 2 * settings.margin
        layers = sorted({settings.content_layer, *settings.style_layers})
        memory = plan_memory(height + margin, width + margin, layers, settings.tile, runtime.memory_budget(),
                             runtime.autocast)
        lines.append(f"memory, the largest frame with its --margin: {memory.describe()}")
    stopwatch = Stopwatch(settings, hooks, runtime)
    work_seconds = sum(stopwatch.seconds_for(work) for unit in units for work in unit.work)
    iterations = sum(work.count * sum(work.iterations) for unit in units for work in unit.work)
    lines.append(f"estimate: about {duration(work_seconds / max(1, workers))} for {iterations} iterations "
                 f"(timed on {runtime.device} at {len(stopwatch.timings)} size(s), "
                 f"which took {stopwatch.seconds:.1f} s; scene cuts and early stops move it)")
    lines.append("nothing was written (--dry-run)")
    return lines


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
