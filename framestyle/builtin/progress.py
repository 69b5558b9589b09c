"""Progress on stderr: rich bars on an interactive terminal, plain lines otherwise.

Interactive means stderr is a terminal and ``TERM`` is not ``dumb``; rich
honours ``NO_COLOR``. Plain mode prints one line per input (and with ``-v``
every tenth of the iterations), because rich's live display prints nothing
until it stops when stderr is a file or a pipe. ``-q`` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from framestyle.events import FrameEnd, FrameStart, RunEnd, RunStart, SourceEnd, SourceStart, Step
from framestyle.hookspecs import hookimpl
from framestyle.settings import Settings


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def say(text: str) -> None:
    sys.stderr.write(f"framestyle: {text}\n")
    sys.stderr.flush()


class SourceState:
    """What a reporter tracks of one input; several may be in flight together."""

    def __init__(self, event: SourceStart) -> None:
        self.iterations = 0
        self.frames = 0
        self.loss = float("nan")
        self.video = bool(event.info and event.info.kind == "video")
        self.expected = event.info.frame_count if event.info else None
        self.started = self.last_line = time.perf_counter()
        self.reused = 0  # frames kept from an interrupted run: instant, left out of the rate

    def frame_end(self, event: FrameEnd) -> None:
        self.iterations += event.iterations
        self.frames += 1
        self.loss = event.loss
        if event.reused:
            self.reused += 1
            self.started = time.perf_counter()


class WorkMeter:
    """How far the frames in flight are, each by the share of its planned
    work done: iterations weighed by the pixels each optimised, so that a
    frame's cheap coarse-to-fine levels do not read as most of it (an ETA
    from iterations alone grew as the larger levels came)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.frames: dict[tuple[Path, int], list[float]] = {}  # work done, work planned, last iteration

    def start(self, event: FrameStart) -> None:
        self.frames[(event.path, event.index)] = [0.0, planned_work(event, self.settings), 0]

    def step(self, event: Step) -> tuple[float, float] | None:
        """The frame's work done and planned after this step. Steps may come
        coalesced (a cluster's workers send the newest once a second): the
        iterations since the last one count at this one's pixels."""
        work = self.frames.get((event.path, event.frame))
        if work is None:
            return None
        iterations, work[2] = max(0, event.iteration - work[2]), event.iteration
        work[0] += iterations * (event.pixels or work[1] / max(1, event.iterations))
        return work[0], work[1]

    def end(self, path: Path, index: int) -> None:
        self.frames.pop((path, index), None)

    def in_flight(self) -> float:
        """The frames in flight as a number of frames (a frame ends at its FrameEnd only)."""
        return sum(min(0.99, done / planned) for done, planned, _ in self.frames.values() if planned)


def planned_work(event: FrameStart, settings: Settings) -> float:
    """Pixel-iterations a frame's budget asks for: each coarse-to-fine
    level's share of the iterations times its pixels, margin included (a
    warm frame: one level, and it stops sooner)."""
    from framestyle.transfer.frame import pyramid, split_iterations
    from framestyle.transfer.margin import warm_margin

    margin = 2 * (warm_margin(settings.margin) if event.warm else settings.margin)
    height, width = event.height + margin, event.width + margin
    levels = [(height, width)] if event.warm else pyramid(height, width, settings.scales)
    shares = split_iterations(event.iterations, len(levels), settings.final_share)
    return float(sum(share * h * w for (h, w), share in zip(levels, shares, strict=True)))


class PlainReporter:
    def __init__(self, event: RunStart) -> None:
        self.verbose = event.settings.verbosity > 0
        self.total = event.total_items
        self.sources: dict[Path, SourceState] = {}
        self.every: dict[tuple[Path, int], int] = {}
        say(f"{self.total} input(s), device {event.device}, weights: {event.weights}")

    def source_start(self, event: SourceStart) -> None:
        self.sources[event.path] = SourceState(event)

    def frame_start(self, event: FrameStart) -> None:
        self.every[(event.path, event.index)] = max(1, event.iterations // 10)

    def step(self, event: Step) -> None:
        every = self.every.get((event.path, event.frame), max(1, event.iterations // 10))
        if self.verbose and (event.iteration % every == 0 or event.iteration == event.iterations):
            where = f"{event.path.name} frame {event.frame + 1}" if self.sources[event.path].video else event.path.name
            say(f"  {where}: iteration {event.iteration}/{event.iterations}: loss {event.loss:.4g}")

    def frame_end(self, event: FrameEnd) -> None:
        self.every.pop((event.path, event.index), None)
        state = self.sources[event.path]
        state.frame_end(event)
        if self.verbose and state.video:
            say(f"  {event.path.name} frame {event.index + 1}: {frame_detail(event)}")
        elif state.video and time.perf_counter() - state.last_line >= PLAIN_INTERVAL:
            state.last_line = time.perf_counter()
            say(f"  {event.path.name}: "
                f"{video_progress(state.frames, state.reused, state.expected, state.last_line - state.started)}")

    def source_end(self, event: SourceEnd) -> None:
        state = self.sources.pop(event.path, None)
        where = f"[{event.item}/{self.total}] {event.path} -> {event.output}"
        if event.status == "done" and state and state.video:
            rate = 60 * state.frames / event.seconds if event.seconds else 0.0
            say(f"{where}: {state.frames} frames, {state.iterations} iterations, {event.seconds:.1f} s "
                f"({rate:.1f} frames/min)")
        elif event.status == "done" and state:
            say(f"{where}: {state.iterations} iterations, {event.seconds:.1f} s, loss {state.loss:.4g}")
        elif event.status == "skipped":
            say(f"{where}: skipped, {event.message}")
        # failures are logged by the engine; interruptions by run_end

    def run_end(self, event: RunEnd) -> None:
        summarise(event, say)


class RichReporter:
    """A bar for the whole job, in frames (an image is one), with its ETA;
    under it one row per frame in flight (the batch: ``--batch-size``) with
    its iterations and loss, for the first ``ROWS`` of them; a cluster's
    thousands more are counted in one row."""

    def __init__(self, event: RunStart) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.console.print(f"framestyle: device {event.device}, weights: {event.weights}")
        self.total = event.total_items
        self.finished_items = 0
        # The job in frames, those in flight counted by their share of work
        # done: its ETA moves from the first iterations on, not only once an
        # input ends.
        self.job = self.progress.add_task("job (frames)", total=event.frames, count=f"0/{event.frames}",
                                          detail=f"0/{self.total} inputs")
        self.frames_done = 0
        self.meter = WorkMeter(event.settings)
        self.sources: dict[Path, SourceState] = {}
        self.rows: dict[tuple[Path, int], Any] = {}
        self.unshown: dict[Path, set[int]] = {}  # frames in flight beyond ROWS, by input
        self.more: Any = None  # the row that counts them
        self.progress.start()

    def source_start(self, event: SourceStart) -> None:
        self.sources[event.path] = SourceState(event)

    def row(self, path: Path, frame: int, iterations: int) -> Any:
        """The frame's row; None when it is one of those counted together."""
        key = (path, frame)
        if key in self.rows:
            return self.rows[key]
        if frame in self.unshown.get(path, ()):
            return None
        if len(self.rows) >= ROWS:
            self.unshown.setdefault(path, set()).add(frame)
            self.count_more()
            return None
        state = self.sources.get(path)
        name = f"  {path.name}" + (f" frame {frame + 1}" if state and state.video else "")
        self.rows[key] = self.progress.add_task(name, total=iterations, count=f"0/{iterations}", detail="")
        return self.rows[key]

    def count_more(self) -> None:
        more = sum(map(len, self.unshown.values()))
        if more and self.more is None:
            self.more = self.progress.add_task("", total=None, count="", detail="")
        if self.more is not None:
            self.progress.update(self.more, description=f"  and {more} more frame(s) in flight")

    def frame_start(self, event: FrameStart) -> None:
        self.meter.start(event)
        row = self.row(event.path, event.index, event.iterations)
        if row is not None:
            self.progress.update(row, total=self.meter.frames[(event.path, event.index)][1])

    def step(self, event: Step) -> None:
        work = self.meter.step(event)
        row = self.row(event.path, event.frame, event.iterations)
        if row is not None and work is not None:
            self.progress.update(row, completed=work[0], count=f"{event.iteration}/{event.iterations}",
                                 detail=f"loss {event.loss:.4g}")
        self.update_job()

    def update_job(self) -> None:
        done = self.frames_done + self.meter.in_flight()
        total = self.progress.tasks[self.job].total or 0
        self.progress.update(self.job, completed=done, count=f"{self.frames_done}/{int(total)}")

    def frame_end(self, event: FrameEnd) -> None:
        row = self.rows.pop((event.path, event.index), None)
        if row is not None:
            self.progress.remove_task(row)
        elif event.index in self.unshown.get(event.path, ()):
            self.unshown[event.path].discard(event.index)
            self.count_more()
        state = self.sources[event.path]
        state.frame_end(event)
        self.meter.end(event.path, event.index)
        self.frames_done += 1
        self.update_job()
        if state.video and state.frames % 25 == 0 and not event.reused:
            elapsed = time.perf_counter() - state.started
            self.console.print(f"framestyle: {event.path.name}: "
                               f"{video_progress(state.frames, state.reused, state.expected, elapsed)}",
                               highlight=False)

    def source_end(self, event: SourceEnd) -> None:
        state = self.sources.pop(event.path, None)
        for key in [key for key in self.rows if key[0] == event.path]:  # frames of a failed input
            self.progress.remove_task(self.rows.pop(key))
        if self.unshown.pop(event.path, None):
            self.count_more()
        done = state.frames if state else 0
        expected = max(state.expected or 1, done) if state and state.video else 1
        self.frames_done += expected - done  # what it did not take: skipped, failed, shorter
        for index in [index for path, index in self.meter.frames if path == event.path]:
            self.meter.end(event.path, index)
        self.update_job()
        self.finished_items += 1
        self.progress.update(self.job, detail=f"{self.finished_items}/{self.total} inputs")
        if event.status == "skipped":
            self.progress.console.print(f"framestyle: {event.path}: skipped, {event.message}")

    def run_end(self, event: RunEnd) -> None:
        self.progress.stop()
        summarise(event, lambda text: self.console.print(f"framestyle: {text}", highlight=False))


# Frames in flight shown a row each on a terminal: the batch of one machine
# fits, a cluster's thousands are counted in one more row.
ROWS = 12

# Plain mode prints a video's progress at most this often (seconds), so logs
# of long jobs show life without a line per frame.
PLAIN_INTERVAL = 30.0


def video_progress(done: int, reused: int, expected: int | None, seconds: float) -> str:
    """``done`` frames so far, of which ``reused`` came from an interrupted run;
    ``seconds`` spent on the others."""
    rate = 60 * (done - reused) / seconds if seconds else 0.0
    text = f"frame {done}" + (f"/{max(expected, done)}" if expected else "") + f", {rate:.1f} frames/min"
    if expected and expected > done and rate:
        text += f", about {(expected - done) / rate:.0f} min left"
    return text


def frame_detail(event: FrameEnd) -> str:
    if event.reused:
        return "reused"
    kind = "warm" if event.warm else "cut, cold" if event.cut else "cold"
    text = f"{event.iterations} it ({kind}), loss {event.loss:.4g}"
    return text + (f", E_warp {event.warp_error:.2e}" if event.warp_error is not None else "")


def summarise(event: RunEnd, emit: Any) -> None:
    parts = [f"{event.done} done" + (f" ({event.redone} redone: made with other settings)" if event.redone else "")]
    if event.skipped:
        parts.append(f"{event.skipped} skipped (already complete)")
    if event.failed:
        parts.append(f"{len(event.failed)} failed")
    state = "interrupted after" if event.interrupted else "in"
    emit(f"{', '.join(parts)} {state} {event.seconds:.1f} s")
    for path, message in event.failed:
        emit(f"failed: {path}: {message}")


class Progress:
    """The progress of a run on the terminal: rich where one is attached,
    plain lines otherwise, nothing with -q. One per plugin host; it follows
    one run at a time."""

    def __init__(self) -> None:
        self.reporter: RichReporter | PlainReporter | None = None

    @hookimpl
    def on_run_start(self, event: RunStart) -> None:
        if event.settings.verbosity < 0:
            self.reporter = None
        elif interactive():
            self.reporter = RichReporter(event)
        else:
            self.reporter = PlainReporter(event)

    @hookimpl
    def on_source_start(self, event: SourceStart) -> None:
        if self.reporter is not None:
            self.reporter.source_start(event)

    @hookimpl
    def on_frame_start(self, event: FrameStart) -> None:
        if self.reporter is not None:
            self.reporter.frame_start(event)

    @hookimpl
    def on_step(self, event: Step) -> None:
        if self.reporter is not None:
            self.reporter.step(event)

    @hookimpl
    def on_frame_end(self, event: FrameEnd) -> None:
        if self.reporter is not None:
            self.reporter.frame_end(event)

    @hookimpl
    def on_source_end(self, event: SourceEnd) -> None:
        if self.reporter is not None:
            self.reporter.source_end(event)

    @hookimpl
    def on_run_end(self, event: RunEnd) -> None:
        reporter, self.reporter = self.reporter, None
        if reporter is not None:
            reporter.run_end(event)
