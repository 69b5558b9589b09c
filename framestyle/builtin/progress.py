"""Progress on stderr: rich bars on an interactive terminal, plain lines otherwise.

Interactive means stderr is a terminal and ``TERM`` is not ``dumb``; rich
honours ``NO_COLOR``. Plain mode prints one line per input (and with ``-v``
every tenth of the iterations), because rich's live display prints nothing
until it stops when stderr is a file or a pipe. ``-q`` silences both.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from framestyle.hookspecs import hookimpl
from framestyle.types import (
    FrameEnd,
    FrameStart,
    RunEnd,
    RunStart,
    SourceEnd,
    SourceStart,
    Step,
)


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def say(text: str) -> None:
    sys.stderr.write(f"framestyle: {text}\n")
    sys.stderr.flush()


class PlainReporter:
    def __init__(self, event: RunStart) -> None:
        self.verbose = event.settings.verbosity > 0
        self.total = event.total_items
        self.iterations = 0
        say(f"{self.total} input(s), device {event.device}, weights: {event.weights}")

    def source_start(self, event: SourceStart) -> None:
        self.iterations = 0
        self.frames = 0
        self.loss = float("nan")
        self.video = bool(event.info and event.info.kind == "video")
        self.expected = event.info.frame_count if event.info else None
        self.started = self.last_line = time.perf_counter()
        self.reused = 0  # frames kept from an interrupted run: instant, left out of the rate

    def frame_start(self, event: FrameStart) -> None:
        self.every = max(1, event.iterations // 10)

    def step(self, event: Step) -> None:
        if self.verbose and (event.iteration % self.every == 0 or event.iteration == event.iterations):
            say(f"  iteration {event.iteration}/{event.iterations}: loss {event.loss:.4g}")

    def frame_end(self, event: FrameEnd) -> None:
        self.iterations += event.iterations
        self.frames += 1
        self.loss = event.loss
        if event.reused:
            self.reused += 1
            self.started = time.perf_counter()
        if self.verbose and self.video:
            say(f"  frame {event.index + 1}: {frame_detail(event)}")
        elif self.video and time.perf_counter() - self.last_line >= PLAIN_INTERVAL:
            self.last_line = time.perf_counter()
            say(f"  {event.path.name}: "
                f"{video_progress(self.frames, self.reused, self.expected, self.last_line - self.started)}")

    def source_end(self, event: SourceEnd) -> None:
        where = f"[{event.item}/{self.total}] {event.path} -> {event.output}"
        if event.status == "done" and self.video:
            rate = 60 * self.frames / event.seconds if event.seconds else 0.0
            say(f"{where}: {self.frames} frames, {self.iterations} iterations, {event.seconds:.1f} s "
                f"({rate:.1f} frames/min)")
        elif event.status == "done":
            say(f"{where}: {self.iterations} iterations, {event.seconds:.1f} s, loss {self.loss:.4g}")
        elif event.status == "skipped":
            say(f"{where}: skipped, {event.message}")
        # failures are logged by the engine; interruptions by run_end

    def run_end(self, event: RunEnd) -> None:
        summarise(event, say)


class RichReporter:
    def __init__(self, event: RunStart) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.console.print(f"framestyle: device {event.device}, weights: {event.weights}")
        self.overall = self.progress.add_task("inputs", total=event.total_items, detail="")
        self.frames = self.progress.add_task("frames", total=None, detail="", visible=False)
        self.frames_done = 0
        self.steps = self.progress.add_task("iterations", total=None, detail="")
        self.progress.start()

    def source_start(self, event: SourceStart) -> None:
        name = event.path.name
        self.progress.update(self.overall, detail=name)
        video = bool(event.info and event.info.kind == "video")
        count = event.info.frame_count if event.info else None
        self.progress.reset(self.frames, total=count, completed=0, visible=video, detail="")
        self.started = time.perf_counter()
        self.frames_done = 0
        self.reused = 0

    def frame_start(self, event: FrameStart) -> None:
        if event.frame_count is not None:  # the container's count is an estimate: follow the truth
            self.progress.update(self.frames, total=event.frame_count)
        self.progress.reset(self.steps, total=event.iterations, detail=f"{event.width}x{event.height}")

    def step(self, event: Step) -> None:
        self.progress.update(self.steps, completed=event.iteration, detail=f"loss {event.loss:.4g}")

    def frame_end(self, event: FrameEnd) -> None:
        self.frames_done += 1
        if event.reused:  # instant: do not let it inflate the rate
            self.reused += 1
            self.started = time.perf_counter()
        elapsed = time.perf_counter() - self.started
        rate = 60 * (self.frames_done - self.reused) / elapsed if elapsed else 0.0
        self.progress.update(self.frames, advance=1, detail=f"{rate:.1f}/min, last {frame_detail(event)}")

    def source_end(self, event: SourceEnd) -> None:
        self.progress.update(self.frames, total=self.frames_done)  # what was actually read
        self.progress.advance(self.overall)
        if event.status == "skipped":
            self.progress.console.print(f"framestyle: {event.path}: skipped, {event.message}")

    def run_end(self, event: RunEnd) -> None:
        self.progress.stop()
        summarise(event, lambda text: self.console.print(f"framestyle: {text}", highlight=False))


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
    parts = [f"{event.done} done"]
    if event.skipped:
        parts.append(f"{event.skipped} skipped (already complete)")
    if event.failed:
        parts.append(f"{len(event.failed)} failed")
    state = "interrupted after" if event.interrupted else "in"
    emit(f"{', '.join(parts)} {state} {event.seconds:.1f} s")
    for path, message in event.failed:
        emit(f"failed: {path}: {message}")


# One run at a time per thread: the reporter lives from on_run_start to on_run_end.
_local = threading.local()


def current() -> Any:
    return getattr(_local, "reporter", None)


@hookimpl
def on_run_start(event: RunStart) -> None:
    if event.settings.verbosity < 0:
        _local.reporter = None
    elif interactive():
        _local.reporter = RichReporter(event)
    else:
        _local.reporter = PlainReporter(event)


@hookimpl
def on_source_start(event: SourceStart) -> None:
    if reporter := current():
        reporter.source_start(event)


@hookimpl
def on_frame_start(event: FrameStart) -> None:
    if reporter := current():
        reporter.frame_start(event)


@hookimpl
def on_step(event: Step) -> None:
    if reporter := current():
        reporter.step(event)


@hookimpl
def on_frame_end(event: FrameEnd) -> None:
    if reporter := current():
        reporter.frame_end(event)


@hookimpl
def on_source_end(event: SourceEnd) -> None:
    if reporter := current():
        reporter.source_end(event)


@hookimpl
def on_run_end(event: RunEnd) -> None:
    if reporter := current():
        _local.reporter = None
        reporter.run_end(event)
