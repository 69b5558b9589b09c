"""The run: inputs -> frames -> stylised frames -> outputs, one item at a time.

Each input succeeds or fails on its own: a bad file is logged in one line and
the run goes on (``-x`` stops at the first). Outputs appear under their final
names only when complete, so a rerun skips them (resume) and an interrupted
run leaves nothing half-written behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framestyle import segments as splitting
from framestyle.ahead import Frame, ReadAhead
from framestyle.batch import Scheduler
from framestyle.discover import WorkItem, kind_of, plan
from framestyle.errors import FramestyleError, InputError, PluginError, UsageError
from framestyle.host import PluginHost, WrapperCalls
from framestyle.images import (
    IMAGE_EXTENSIONS,
    image_size,
    preview_path,
    resize,
)
from framestyle.motion import Motion
from framestyle.motion import estimate as estimate_motion
from framestyle.motion import warp_error as motion_warp_error
from framestyle.report import FrameLog
from framestyle.runrecord import ItemRecord, write_records
from framestyle.runtime import Runtime, to_tensor
from framestyle.segments import Segment
from framestyle.settings import COLOR_MODES, MAX_BATCH, MAX_PIXELS, Settings
from framestyle.types import (
    FrameEnd,
    FrameJob,
    FrameStart,
    RunEnd,
    RunStart,
    Source,
    SourceEnd,
    SourceInfo,
    SourceStart,
    StylizeResult,
    Writer,
    WriterSpec,
)
from framestyle.weights import Weights

log = logging.getLogger("framestyle")


@dataclass(frozen=True)
class Previous:
    """The last frame of a source, at the size being optimised."""

    content: np.ndarray  # the original frame
    output: np.ndarray  # the stylised frame as written (what a resumed run reads back)


@dataclass
class Outcome:
    status: str  # "done", "skipped", "failed", "interrupted"
    frames: int = 0
    message: str = ""
    kind: str = ""
    iterations: int = 0
    loss: float | None = None
    seconds: float = 0.0


def validate(settings: Settings, host: PluginHost) -> None:
    """Check every name in the settings before any work starts."""
    hooks = host.hooks  # collecting the registries calls the register_* hooks, once
    hooks.optimizers().get(settings.optimizer)
    losses = hooks.losses()
    for name in settings.losses:
        losses.get(name)
    if settings.loader:
        hooks.loaders().get(settings.loader)
    if settings.writer:
        hooks.writers().get(settings.writer)
    if settings.size < 16:
        raise UsageError(f"--size {settings.size}: must be at least 16 pixels")
    if settings.iterations < 0:
        raise UsageError(f"--iterations {settings.iterations}: must not be negative")
    if settings.preserve_colors not in (None, *COLOR_MODES):
        raise UsageError(f"--preserve-colors {settings.preserve_colors}: choose luminance or histogram")
    if not 0.1 <= settings.style_scale <= 4:
        raise UsageError(f"--style-scale {settings.style_scale}: must be between 0.1 and 4")
    if not 1 <= settings.scales <= 12 or not 0 < settings.final_share <= 1:
        raise UsageError("--scales must be from 1 to 12 and --final-share between 0 and 1")
    if not 0 <= settings.batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size {settings.batch_size}: must be auto or from 1 to {MAX_BATCH}")
    if settings.preview < 0:
        raise UsageError(f"--preview {settings.preview}: must not be negative")
    if not 1 <= settings.max_pixels <= MAX_PIXELS:
        raise UsageError(f"--max-pixels {settings.max_pixels}: must be between 1 and {MAX_PIXELS}")
    if settings.size * settings.size > settings.max_pixels:
        # Checked before anything is allocated: a square input would be optimised at size x size.
        raise UsageError(f"--size {settings.size}: a {settings.size}x{settings.size} image is more than "
                         f"--max-pixels {settings.max_pixels}")


class Engine:
    def __init__(self, settings: Settings, host: PluginHost, weights: Weights | None = None) -> None:
        validate(settings, host)
        self.settings = settings
        self.hooks = host.hooks
        self.plan = plan(settings, self.hooks.loaders(), self.hooks.writers())
        self.runtime = Runtime(settings, self.hooks, weights)
        # The built-in optimisation alone: frames can be batched, and the
        # engine drives it directly; a plugin's stylize gets one frame a call.
        self.own_stylize = self.hooks.implementers("stylize", wrappers=False) == ["stylize"]
        # Segments start cold, so a video is split only where the batch runs
        # them faster than one after another: on a GPU, or when asked for.
        self.split_videos = settings.batch_size > 0 or self.runtime.device.type == "cuda"

    def run(self) -> RunEnd:
        started = time.perf_counter()
        items = self.plan.items
        for path in self.plan.unclaimed:
            log.debug("skipped %s: no loader reads %s files", path, path.suffix or "extensionless")
        if self.plan.unclaimed:
            log.info("skipped %d file(s) that are not images (-v lists them)", len(self.plan.unclaimed))
        self.failed: list[tuple[Path, str]] = []
        for path, message in self.plan.failures:
            log.error("%s: %s", path, message)
            self.failed.append((path, message))
        self.hooks.on_run_start(
            RunStart(self.settings, len(items), str(self.runtime.device), self.runtime.weights.source,
                     self.expected_frames(items))
        )
        self.counts = {"done": 0, "skipped": 0}
        self.records: dict[int, ItemRecord] = {}
        self.in_flight: list[ItemRun] = []
        interrupted = False
        capacity = self.batch_capacity()
        self.scheduler = Scheduler(self.runtime.encode, capacity, self.lanes(items, capacity))
        try:
            self.scheduler.run(self.streams(items, together=self.scheduler.capacity > 1))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for item_run in list(self.in_flight):  # interrupted, or a usage or plugin error
                item_run.end(Outcome("interrupted"))
        self.write_records([self.records[n] for n in sorted(self.records)], interrupted)
        exit_code = 130 if interrupted else 1 if self.failed else 0
        summary = RunEnd(self.counts["done"], self.counts["skipped"], self.failed, interrupted,
                         time.perf_counter() - started, exit_code)
        self.hooks.on_run_end(summary)
        return summary

    def batch_capacity(self) -> int:
        """How many frames are optimised together: ``--batch-size``, or for
        auto what the device's free memory holds; 1 when a plugin implements
        ``stylize`` (it gets one frame a call)."""
        if not self.own_stylize:
            if self.settings.batch_size != 1:
                others = [name for name in self.hooks.implementers("stylize", wrappers=False) if name != "stylize"]
                log.info("frames are stylised one at a time: plugin(s) %s implement stylize", ", ".join(others))
            return 1
        if self.settings.batch_size:
            return self.settings.batch_size
        capacity = self.runtime.auto_batch_size()
        level = logging.INFO if self.runtime.device.type == "cuda" else logging.DEBUG
        log.log(level, "batch size %d (auto, %s)", capacity, self.runtime.device)
        return capacity

    def lanes(self, items: list[WorkItem], capacity: int) -> int:
        """The most frames that can be in flight at once: one per image or
        unsplit video, up to ``capacity`` per video split into segments."""
        loaders = self.hooks.loaders()
        streams = 0
        for item in items:
            video = kind_of(item.path, self.settings, loaders) == "video"
            streams += capacity if video and self.split_videos else 1
            if streams >= capacity:
                return capacity
        return max(1, streams)

    def streams(self, items: list[WorkItem], together: bool) -> Iterator[ItemRun | SegmentRun]:
        """Each input's frames for the scheduler, opened only when the batch
        has room for them; with ``-x``, none after the first failure. Images
        to be optimised ``together`` come in order of their working size, so
        that a batch holds images of one size."""
        numbered = list(enumerate(items, start=1))
        if together:
            numbered.sort(key=lambda pair: self.working_size(pair[1].path))
        for number, item in numbered:
            if self.failed and self.settings.exitfirst:
                return
            item_run = ItemRun(self, item, number, len(items))
            if item_run.begin():
                yield from item_run.streams(self.scheduler.capacity)

    def expected_frames(self, items: list[WorkItem]) -> int:
        """Frames in the whole job, for its progress and ETA: one per image,
        a video's as its header claims (1 if it cannot be opened)."""
        total = 0
        loaders = self.hooks.loaders()
        for item in items:
            if not any(spec.kind == "video" for spec in loaders.for_extension(item.path.suffix)):
                total += 1
                continue
            try:
                source = self.open_source(item.path)
                total += max(1, source.info.frame_count or 1)
                source.close()
            except Exception:
                total += 1
        return total

    def working_size(self, path: Path) -> tuple[int, int]:
        """(height, width) an image is optimised at, from its header; (0, 0)
        for videos and for files whose header cannot be read (they fail, or
        not, when their turn comes)."""
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            return (0, 0)
        try:
            width, height = image_size(path, self.settings.max_pixels)
        except Exception:
            return (0, 0)
        (width, height), _ = self.runtime.sizes(width, height)
        return (height, width)

    def item_ended(self, item_run: ItemRun, outcome: Outcome) -> None:
        item = item_run.item
        if item_run in self.in_flight:
            self.in_flight.remove(item_run)
        self.records[item_run.number] = ItemRecord(
            str(item.path), str(item.output), outcome.kind, outcome.status, outcome.frames, outcome.iterations,
            round(outcome.seconds, 3), outcome.loss, outcome.message)
        if outcome.status in self.counts:
            self.counts[outcome.status] += 1
        elif outcome.status == "failed":
            self.failed.append((item.path, outcome.message))

    def write_records(self, records: list[ItemRecord], interrupted: bool) -> None:
        """The resolved settings and the manifest beside the outputs, and the
        HTML report with --report. Losing them must not fail the run."""
        assert self.settings.output is not None
        try:
            manifest = write_records(self.settings, Path(self.settings.output), self.plan.to_file, records)
            if manifest is not None and self.settings.report and not interrupted:
                from framestyle.htmlreport import write_report

                log.info("report: %s", write_report(manifest))
        except Exception as exc:  # the outputs are what matter; their records are secondary
            log.debug("traceback", exc_info=True)
            log.warning("could not write the run's records beside the outputs: %s", exc)

    def resume(self, writer: Writer, info: SourceInfo, segments: list[Segment] | None = None) -> int:
        """How many frames of this source a previous, interrupted run finished."""
        if not hasattr(writer, "resume"):
            return 0
        kept = writer.resume(fingerprint(self.settings, info, self.runtime, segments), not self.settings.overwrite)
        if kept:
            log.info("%s: resuming after frame %d (finished frames are reused)", info.path, kept)
        return kept

    # choosing plugins -------------------------------------------------------------

    def open_source(self, path: Path) -> Source:
        loaders = self.hooks.loaders()
        if self.settings.loader:
            candidates = [loaders.get(self.settings.loader)]
        else:
            candidates = loaders.for_extension(path.suffix)
        if not candidates:
            raise InputError(
                f"no loader reads {path.suffix or 'extensionless'} files "
                f"(installed: {', '.join(loaders.names()) or 'none'})"
            )
        for spec in candidates:
            source = spec.open(path)
            if source is not None:
                return self.within_limits(source)
        raise InputError(f"no loader accepted the file (tried {', '.join(s.name for s in candidates)})")

    def within_limits(self, source: Source) -> Source:
        """Refuse a source whose frames are larger than --max-pixels, from
        its header, before a frame is decoded."""
        info = source.info
        if info.width * info.height > self.settings.max_pixels:
            source.close()
            what = "its frames are" if info.kind == "video" else "it is"
            raise InputError(f"{what} {info.width}x{info.height} pixels, more than the limit of "
                             f"{self.settings.max_pixels:,} (--max-pixels); not decoded")
        return source

    def choose_writer(self, target: Path) -> WriterSpec:
        writers = self.hooks.writers()
        if self.settings.writer:
            return writers.get(self.settings.writer)
        candidates = writers.for_extension(target.suffix)
        if not candidates:
            raise UsageError(f"no writer makes {target.suffix or 'extensionless'} files ({target})")
        return candidates[0]


class Pending:
    """A frame in flight: its optimisation and what writing it needs."""

    def __init__(self, index: int, content_rgb: np.ndarray, content: torch.Tensor, size: tuple[int, int],
                 motion: Motion | None, previous: Previous | None, warm: bool, reuse: bool,
                 work: Any | None, part: str = "frame") -> None:
        self.index, self.content_rgb, self.content, self.size = index, content_rgb, content, size
        self.motion, self.previous, self.warm, self.reuse = motion, previous, warm, reuse
        self.work = work  # a FrameWork, a finished StylizeResult (a plugin's), or None (reused)
        self.part = part  # "frame", or "head": a segment's start that only fades into the output
        self.started = time.perf_counter()
        self.iterations, self.loss, self.losses = 0, math.nan, {}
        self.wrappers: WrapperCalls | None = None  # stylize wrappers around the engine's own optimisation

    @property
    def task(self) -> Any:
        return getattr(self.work, "task", None)

    @property
    def finished(self) -> bool:
        return not hasattr(self.work, "advance") or self.work.finished

    def advance(self) -> None:
        self.work.advance()

    def result(self) -> StylizeResult:
        if hasattr(self.work, "result"):
            result = self.work.result()
            return self.wrappers.finish(result) if self.wrappers is not None else result
        assert self.work is not None
        return self.work


class ItemRun:
    """One input in progress: its source, writer and frames, a stream of
    frames for the scheduler (:mod:`framestyle.batch`), or a video split
    into several segment streams. It ends once, as done, skipped, failed or
    interrupted, and releases its files then."""

    def __init__(self, engine: Engine, item: WorkItem, number: int, total: int) -> None:
        self.engine, self.item, self.number, self.total = engine, item, number, total
        self.settings, self.hooks, self.runtime = engine.settings, engine.hooks, engine.runtime
        self.source: Source | None = None
        self.writer: Writer | None = None
        self.cancelled = False
        self.announced = False
        self.previous: Previous | None = None
        self.kept = 0
        self.held: Frame | None = None
        self.frames: ReadAhead | None = None  # unsplit: its frames, read ahead
        self.segments: list[SegmentRun] = []  # split: its segments,
        self.finished: dict[str, set[int]] = {}  # the frames and heads kept on disk by part,
        self.next_to_write = 0  # and the first frame not yet handed to the writer
        self.starting: set[int] = set()  # frames announced whose work may be built again (out of memory)
        self.iterations = 0  # over all its frames, segment heads included
        self.started = time.perf_counter()

    def begin(self) -> bool:
        """Open the input and its output; False if it is skipped or failed."""
        writer_spec = self.engine.choose_writer(self.item.output)
        if not self.settings.overwrite and writer_spec.is_complete(self.item.output):
            self.announce(None)
            self.end(Outcome("skipped", message="already complete (--overwrite redoes it)"))
            return False
        self.engine.in_flight.append(self)
        try:
            self.source = self.engine.open_source(self.item.path)
            self.announce(self.source.info)
            with writing(self.item.output):
                self.writer = writer_spec.open(self.item.output, self.source.info)
            self.report = FrameLog(self.source.info, self.item.output, self.settings, self.runtime)
        except (UsageError, PluginError):
            raise
        except Exception as error:
            self.fail(error)
            return False
        return True

    def announce(self, info: SourceInfo | None) -> None:
        self.announced = True
        self.hooks.on_source_start(SourceStart(self.number, self.total, self.item.path, self.item.output, info))

    def streams(self, capacity: int) -> list[ItemRun | SegmentRun]:
        """This input as one stream of frames, or a video as ``capacity``
        segments optimised side by side (writers that take frames out of
        order only). Nothing if it failed meanwhile."""
        assert self.source is not None and self.writer is not None
        try:
            plan = None
            if capacity > 1 and self.engine.split_videos and self.source.info.kind == "video" \
                    and hasattr(self.writer, "keep"):
                plan = self.plan_segments(capacity)
            self.kept = self.engine.resume(self.writer, self.source.info, plan)
            if plan is None:
                self.frames = ReadAhead(enumerate(self.source.frames()), self.runtime.working_frame)
                return [self]
            self.finished = {part: self.writer.finished(part) for part in ("frame", "head")}  # type: ignore[attr-defined]
            self.segments = [SegmentRun(self, segment, later)
                             for segment, later in zip(plan, [*plan[1:], None], strict=True)]
            return list(self.segments)
        except (UsageError, PluginError):
            raise
        except Exception as error:
            self.fail(error)
            return []

    def plan_segments(self, capacity: int) -> list[Segment] | None:
        """Read the video once for its length and its scene cuts, and split it."""
        assert self.source is not None
        source = self.engine.open_source(self.item.path)
        cuts, count, last = [], 0, None
        try:
            for index, frame in enumerate(source.frames()):
                working = self.runtime.working_frame(frame)[0]
                if last is not None and estimate_motion(last, working).cut:
                    cuts.append(index)
                last, count = working, index + 1
        finally:
            source.close()
        plan = splitting.plan_segments(count, capacity, cuts)
        if len(plan) < 2:
            return None
        log.info("%s: %d frames, %d scene cut(s); %s", self.item.path, count, len(cuts), splitting.describe(plan))
        return plan

    # the stream ----------------------------------------------------------------

    def next_work(self) -> Pending | None:
        assert self.frames is not None
        frame = self.held or next(self.frames, None)
        if frame is None:
            self.close_reader()
            self.complete()
            return None
        self.held = frame  # offered again if it cannot start now (out of memory)
        pending = self.prepare(frame, self.previous, reuse=frame.index < self.kept)
        self.held = None
        return pending

    def close_reader(self) -> None:
        if self.frames is not None:
            self.frames.close()

    def prepare(self, frame: Frame, previous: Previous | None, reuse: bool, part: str = "frame") -> Pending:
        """A frame's start. A video frame that continues a shot starts warm
        from the previous result warped by the flow of the original frames;
        the first frame and the first after a scene cut start cold."""
        assert self.source is not None
        info, settings = self.source.info, self.settings
        index, content_rgb, size = frame.index, frame.working, frame.out_size
        content = to_tensor(content_rgb, self.runtime.device)
        motion = frame.motion if previous else None
        warm = previous is not None and motion is not None and not motion.cut and settings.warm_start
        video = info.kind == "video"
        budget = settings.frame_iterations(video, warm)
        estimate = max(info.frame_count or 0, index + 1) if video else info.frame_count
        if part == "frame" and index not in self.starting:
            self.hooks.on_frame_start(FrameStart(info.path, index, estimate, size[0], size[1], budget))
            self.starting.add(index)
        work: Any = None
        wrappers = None
        if not reuse:
            last = to_tensor(previous.output, self.runtime.device) if previous else None
            job = FrameJob(info, index, content, last, settings, self.runtime, motion=motion, warm=warm,
                           iterations=budget, output=self.item.output)
            init = self.hooks.init_image(job)
            if self.engine.own_stylize:
                from framestyle.builtin.stylize import FrameWork

                wrappers = self.hooks.stylize_wrappers(job, init)
                work = FrameWork(job, init)
            else:
                work = self.hooks.stylize(job, init)
        pending = Pending(index, content_rgb, content, size, motion, previous, warm, reuse, work, part)
        pending.wrappers = wrappers
        return pending

    def finish(self, pending: Pending) -> None:
        """Write a finished frame and remember it for the next."""
        assert self.writer is not None
        written = self.result(pending)
        with writing(self.item.output):
            self.writer.write(written)  # a reused frame too: the writer encodes every frame again
        self.previous = self.ended(pending, written)

    def result(self, pending: Pending, fade: Callable[[int, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """The frame to write: the optimised image at the output size, or a
        finished frame read back."""
        assert self.writer is not None
        if pending.reuse and pending.part == "frame":
            return self.writer.kept(pending.index)  # type: ignore[attr-defined]
        if pending.reuse:
            return self.writer.kept(pending.index, pending.part)  # type: ignore[attr-defined]
        result = pending.result()
        pending.iterations, pending.loss, pending.losses = result.iterations, result.loss, dict(result.losses)
        if not bool(torch.isfinite(result.image).all()):  # whichever plugin made it
            raise InputError(f"frame {pending.index + 1}: the result has NaN or infinite pixels; nothing was written")
        written = self.runtime.finish(result.image, pending.content, pending.size)
        return fade(pending.index, written) if fade else written

    def ended(self, pending: Pending, written: np.ndarray) -> Previous:
        """Report a written frame; what the next frame starts from: this one
        as written, brought back to the working size, exactly what a resumed
        run reads back from disk, so a resumed video is identical to an
        uninterrupted one even when small frames are optimised enlarged."""
        assert self.source is not None
        height, width = pending.content_rgb.shape[:2]
        styled = resize(written, width, height)
        previous, motion = pending.previous, pending.motion
        continues = previous is not None and motion is not None and not motion.cut
        warp_error = motion_warp_error(styled, previous.output, motion) if continues else None  # type: ignore[union-attr,arg-type]
        self.iterations += pending.iterations
        if pending.part == "frame":  # a head of the same index is another segment's, never announced
            self.starting.discard(pending.index)
            end = FrameEnd(self.source.info.path, pending.index, pending.iterations,
                           time.perf_counter() - pending.started, pending.loss, pending.losses, warm=pending.warm,
                           cut=bool(motion and motion.cut), reused=pending.reuse, warp_error=warp_error)
            self.report.add(end)
            self.hooks.on_frame_end(end)
        return Previous(pending.content_rgb, styled)

    def complete(self) -> None:
        """Every frame is written: finish the output under its final name."""
        assert self.writer is not None and self.source is not None
        if not self.report.frames:
            raise InputError("no frames could be read")
        self.report.finish()
        with writing(self.item.output):
            self.writer.close()
        self.writer = None
        preview_path(self.item.output).unlink(missing_ok=True)  # the result itself is there now
        loss = max(self.report.frames, key=lambda f: f.index).loss
        self.end(Outcome("done", len(self.report.frames), kind=self.source.info.kind, iterations=self.iterations,
                         loss=loss if math.isfinite(loss) else None))

    # segments ------------------------------------------------------------------

    def keep(self, pending: Pending, written: np.ndarray) -> None:
        """A segment's frame, finished out of order: kept on disk at once,
        and the frames now complete from the start handed to the writer."""
        assert self.writer is not None
        if not pending.reuse:
            with writing(self.item.output):
                self.writer.keep(pending.index, written, pending.part)  # type: ignore[attr-defined]
            self.finished[pending.part].add(pending.index)
        while self.next_to_write in self.finished["frame"]:
            frame = self.writer.kept(self.next_to_write)  # type: ignore[attr-defined]
            with writing(self.item.output):
                self.writer.write(frame)
            self.next_to_write += 1

    def segment_done(self) -> None:
        if all(segment.done for segment in self.segments):
            if self.next_to_write != sum(len(range(s.segment.owned, s.segment.end)) for s in self.segments):
                raise InputError(f"frame {self.next_to_write + 1} is missing after every segment finished")
            self.complete()

    def fail(self, error: BaseException) -> None:
        if isinstance(error, (UsageError, PluginError)):
            raise error
        if isinstance(error, FramestyleError):
            message = str(error)
        elif isinstance(error, OSError):
            message = f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
        else:  # a plugin's or a codec's bug must not end the batch
            log.debug("traceback for %s", self.item.path, exc_info=error)
            message = f"{type(error).__name__}: {error}"
        self.end(Outcome("failed", message=message))

    def end(self, outcome: Outcome) -> None:
        """Release the files, announce the end, record the outcome; once."""
        if self.cancelled:
            return
        self.cancelled = True
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        for segment in self.segments:
            segment.close()
        self.close_reader()
        if self.source is not None:
            outcome.kind = outcome.kind or self.source.info.kind
            self.source.close()
        if not self.announced:  # it failed to open: still announce it before its end
            self.announce(None)
        if outcome.status == "failed":
            log.error("%s: %s", self.item.path, outcome.message)
        outcome.seconds = time.perf_counter() - self.started
        self.hooks.on_source_end(SourceEnd(self.number, self.item.path, self.item.output, outcome.status,
                                           outcome.frames, outcome.seconds, outcome.message))
        self.engine.item_ended(self, outcome)


class SegmentRun:
    """One segment of a video split for ``--batch-size``: a stream of its
    own frames, read from its own opening of the file, with its own
    warm-start chain; finished frames go to the item out of order."""

    def __init__(self, item_run: ItemRun, segment: Segment, later: Segment | None) -> None:
        self.item_run, self.segment, self.later = item_run, segment, later
        self.source: Source | None = None
        self.frames: ReadAhead | None = None
        self.previous: Previous | None = None
        self.held: Frame | None = None
        self.done = False

    @property
    def cancelled(self) -> bool:
        return self.item_run.cancelled

    def next_work(self) -> Pending | None:
        if self.frames is None:
            self.source = self.item_run.engine.open_source(self.item_run.item.path)
            self.frames = ReadAhead(enumerate(self.source.frames()), self.item_run.runtime.working_frame,
                                    motion_from=self.segment.start + 1)
        while (frame := self.held or next(self.frames, None)) is not None:
            if frame.index < self.segment.start:
                continue
            if frame.index >= self.segment.end:
                break
            part = "head" if frame.index < self.segment.owned else "frame"
            reuse = frame.index in self.item_run.finished[part]
            self.held = frame  # offered again if it cannot start now (out of memory)
            pending = self.item_run.prepare(frame, self.previous, reuse, part)
            self.held = None
            return pending
        self.close()
        self.done = True
        self.item_run.segment_done()
        return None

    def finish(self, pending: Pending) -> None:
        written = self.item_run.result(pending, self.fade)
        self.item_run.keep(pending, written)
        self.previous = self.item_run.ended(pending, written)

    def fade(self, index: int, written: np.ndarray) -> np.ndarray:
        """Frames the later segment's head overlaps: a cross-fade to it."""
        if self.later is None or index not in self.later.head:
            return written
        if index not in self.item_run.finished["head"]:  # it fell behind (out of memory): no fade
            log.debug("%s: frame %d written without its cross-fade", self.item_run.item.path, index + 1)
            return written
        head = self.item_run.writer.kept(index, "head")  # type: ignore[union-attr]
        return splitting.cross_fade(written, head, splitting.fade_weight(self.later, index))

    def fail(self, error: BaseException) -> None:
        self.close()
        self.item_run.fail(error)

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()
        if self.source is not None:
            self.source.close()
            self.source = None


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Report an OS error while writing (disk full, permission, a vanished
    folder) as this output's failure, naming the output."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def fingerprint(settings: Settings, info: SourceInfo, runtime: Runtime, segments: list[Segment] | None = None) -> str:
    """What decides a source's stylised frames: the settings that shape the
    result, the source file as it is, the weights, and where the video was
    split into segments (each starts cold). Finished frames are reused only
    by a run with the same fingerprint."""
    shaping = settings.to_json()
    for name in ("inputs", "output", "verbosity", "overwrite", "exitfirst", "loader", "writer",
                 "format", "video_format", "device", "batch_size", "compile"):
        shaping.pop(name, None)
    stat = info.path.stat()
    split = [dataclasses.astuple(segment) for segment in segments or []]
    blob = json.dumps([shaping, str(info.path.resolve()), stat.st_size, stat.st_mtime_ns,
                       runtime.weights.digest] + ([split] if len(split) > 1 else []), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def run(settings: Settings, host: PluginHost | None = None, weights: Weights | None = None) -> RunEnd:
    """Run ``settings`` with a fresh plugin host (or the one given)."""
    return Engine(settings, host or PluginHost(), weights).run()
