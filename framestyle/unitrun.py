"""Running a unit: the same code on every executor.

:func:`unit_streams` turns a unit into streams of frames for the batch
scheduler (:mod:`framestyle.batch`); :func:`run_unit` runs one unit alone.
Pipeline hooks (``init_image``, ``stylize``, losses, optimizers, writers) run
here, where the unit runs; what happened goes out as small picklable
:class:`~framestyle.units.Event` records, which the driver turns into the
observer hooks, records and reports. Outputs are written atomically by the
writers: a unit cut short leaves finished frames and nothing half-written.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framestyle import segments as splitting
from framestyle.ahead import Frame, ReadAhead
from framestyle.batch import Scheduler
from framestyle.choose import open_source, writer_for
from framestyle.context import PluginContext
from framestyle.errors import FramestyleError, InputError, PluginError, UsageError
from framestyle.host import Hooks, PluginHost, WrapperCalls
from framestyle.images import preview_path, resize
from framestyle.motion import warp_error as motion_warp_error
from framestyle.runtime import Runtime, to_tensor
from framestyle.segments import Segment
from framestyle.settings import Settings
from framestyle.types import (
    FrameEnd,
    FrameJob,
    FrameStart,
    Source,
    SourceInfo,
    SourceStart,
    StylizeResult,
    Writer,
)
from framestyle.units import (
    AssembleVideo,
    Event,
    ImageGroup,
    Item,
    Outcome,
    RunSpec,
    Unit,
    VideoSegment,
    WholeVideo,
)

log = logging.getLogger("framestyle")

Emit = Callable[[Event], None]


@dataclass
class Context:
    """What units run with in one process: the run's spec, the plugin hooks
    and the runtime (device, network, styles, caches). ``cancelled`` holds
    inputs that failed elsewhere, whose other units stop; ``stopping`` says
    no new input may start (``-x`` after a failure)."""

    spec: RunSpec
    hooks: Hooks
    runtime: Runtime
    cancelled: set[int] = field(default_factory=set)
    stopping: Callable[[], bool] = lambda: False

    @property
    def settings(self) -> Settings:
        return self.spec.settings

    @classmethod
    def build(cls, spec: RunSpec) -> Context:
        """The context of a process of its own: a fresh plugin host and runtime."""
        host = PluginHost(spec.plugins, autoload=spec.autoload)
        runtime = Runtime(spec.settings, host.hooks)
        if runtime.weights.digest != spec.weights_digest:
            raise UsageError("this process loads other VGG-19 weights than the run was planned with "
                             f"({runtime.weights.source}); set --weights or FRAMESTYLE_CACHE_DIR alike")
        return cls(spec, host.hooks, runtime)


@dataclass(frozen=True)
class Previous:
    """The last frame of a chain, at the size being optimised."""

    content: np.ndarray  # the original frame
    output: np.ndarray  # the stylised frame as written (what a resumed run reads back)


def run_unit(unit: Unit, context: Context, emit: Emit) -> None:
    """Run ``unit`` alone, its frames batched as the run's spec says."""
    streams: list[Any] = []
    try:
        scheduler = Scheduler(context.runtime.encode, context.spec.capacity, context.spec.lanes)
        streams = unit_streams(unit, context, emit)
        scheduler.run(streams)
    finally:  # done, or interrupted: nothing stays open
        for stream in streams:
            stream.drop()


def unit_streams(unit: Unit, context: Context, emit: Emit) -> list[Any]:
    """The unit's streams of frames for the scheduler; an assembly, which
    has no frames to optimise, runs now and gives none."""
    if isinstance(unit, AssembleVideo):
        assemble(unit, context, emit)
        return []
    if isinstance(unit, VideoSegment):
        return [SegmentStream(unit, context, emit)]
    items = unit.items if isinstance(unit, ImageGroup) else (unit.item,)
    streams = []
    for item in items:
        if context.stopping():
            break
        stream = ItemStream(item, context, emit)
        if stream.begin(whole_video=isinstance(unit, WholeVideo)):
            streams.append(stream)
    return streams


class Pending:
    """A frame in flight: its optimisation and what writing it needs."""

    def __init__(self, frame: Frame, content: torch.Tensor, previous: Previous | None, warm: bool,
                 reuse: bool, work: Any, part: str, wrappers: WrapperCalls | None = None) -> None:
        self.index, self.content_rgb, self.size, self.motion = frame.index, frame.working, frame.out_size, frame.motion
        self.content, self.previous, self.warm, self.reuse = content, previous, warm, reuse
        self.work = work  # a FrameWork, a plugin's finished StylizeResult, or None (reused)
        self.part = part  # "frame"; "tail": faded into the next segment's head later; "head": only for that fade
        self.wrappers = wrappers  # stylize wrappers around the built-in optimisation
        self.started = time.perf_counter()
        self.iterations, self.loss, self.losses = 0, math.nan, {}

    @property
    def task(self) -> Any:
        return getattr(self.work, "task", None)

    @property
    def finished(self) -> bool:
        return not hasattr(self.work, "advance") or self.work.finished

    def advance(self) -> None:
        self.work.advance()

    def result(self) -> StylizeResult:
        if not hasattr(self.work, "result"):
            return self.work  # a plugin's stylize returned it
        result = self.work.result()
        return self.wrappers.finish(result) if self.wrappers is not None else result


class Chain:
    """Frames of one source in order, each starting warm from the last
    one's result where the shot goes on: the steps every stream shares."""

    def __init__(self, item: Item, info: SourceInfo, context: Context, emit: Emit) -> None:
        self.item, self.info, self.context, self.emit = item, info, context, emit
        self.previous: Previous | None = None
        self.starting: set[int] = set()  # frames announced whose work may be built again (out of memory)
        self.iterations = 0  # over all its frames, heads included
        self.frames = 0  # frames announced as ended
        self.plugins = PluginContext(context.runtime, context.hooks, lambda step: emit(Event(item.number, step)))

    def prepare(self, frame: Frame, reuse: bool, part: str = "frame") -> Pending:
        """A frame's start. A video frame that continues a shot starts warm
        from the previous result warped by the flow of the original frames;
        the first frame and the first after a scene cut start cold."""
        settings, runtime, hooks, previous = self.context.settings, self.context.runtime, self.context.hooks, self.previous
        content = to_tensor(frame.working, runtime.device)
        motion = frame.motion if previous else None
        warm = previous is not None and motion is not None and not motion.cut and settings.warm_start
        video = self.info.kind == "video"
        budget = settings.frame_iterations(video, warm)
        if part != "head" and frame.index not in self.starting:
            estimate = max(self.info.frame_count or 0, frame.index + 1) if video else self.info.frame_count
            self.emit(Event(self.item.number, FrameStart(self.info.path, frame.index, estimate, *frame.out_size,
                                                         budget)))
            self.starting.add(frame.index)
        if reuse:
            return Pending(frame, content, previous, warm, reuse, None, part)
        last = to_tensor(previous.output, runtime.device) if previous else None
        job = FrameJob(self.info, frame.index, content, last, settings, self.plugins, motion=motion, warm=warm,
                       iterations=budget, output=self.item.output, previous_rgb=previous.output if previous else None)
        init = hooks.init_image(job)
        if not self.context.spec.own_stylize:
            return Pending(frame, content, previous, warm, reuse, hooks.stylize(job, init), part)
        from framestyle.builtin.stylize import FrameWork

        wrappers = hooks.stylize_wrappers(job, init)
        return Pending(frame, content, previous, warm, reuse, FrameWork(job, init), part, wrappers)

    def result(self, pending: Pending, kept: Callable[[int, str], np.ndarray]) -> np.ndarray:
        """The frame to write: the optimised image at the output size, or a
        finished frame read back."""
        if pending.reuse:
            return kept(pending.index, pending.part)
        result = pending.result()
        pending.iterations, pending.loss, pending.losses = result.iterations, result.loss, dict(result.losses)
        if not bool(torch.isfinite(result.image).all()):  # whichever plugin made it
            raise InputError(f"frame {pending.index + 1}: the result has NaN or infinite pixels; nothing was written")
        return self.context.runtime.finish(result.image, pending.content, pending.size)

    def ended(self, pending: Pending, written: np.ndarray) -> None:
        """Announce a written frame; the next frame starts from this one as
        written, brought back to the working size: exactly what a resumed
        run reads back from disk, so a resumed video is identical to an
        uninterrupted one even when small frames are optimised enlarged."""
        height, width = pending.content_rgb.shape[:2]
        styled = resize(written, width, height)
        previous, motion = pending.previous, pending.motion
        continues = previous is not None and motion is not None and not motion.cut
        warp_error = motion_warp_error(styled, previous.output, motion) if continues else None  # type: ignore[union-attr,arg-type]
        self.iterations += pending.iterations
        if pending.part != "head":  # a head's frame is announced by the segment that owns it
            self.starting.discard(pending.index)
            self.frames += 1
            self.emit(Event(self.item.number, FrameEnd(
                self.info.path, pending.index, pending.iterations, time.perf_counter() - pending.started,
                pending.loss, pending.losses, warm=pending.warm, cut=bool(motion and motion.cut),
                reused=pending.reuse, warp_error=warp_error)))
        self.previous = Previous(pending.content_rgb, styled)


class Stream:
    """One input's frames in order for the scheduler; it ends once, as done,
    failed or interrupted (or a finished part), releasing its files then."""

    item: Item

    def __init__(self, context: Context, emit: Emit) -> None:
        self.context, self.emit = context, emit
        self.source: Source | None = None
        self.frames: ReadAhead | None = None
        self.held: Frame | None = None
        self.ended = False
        self.chain: Chain | None = None

    @property
    def cancelled(self) -> bool:
        return self.ended or self.item.number in self.context.cancelled

    def next_frame(self) -> Frame | None:
        assert self.frames is not None
        return self.held or next(self.frames, None)

    def start(self, frame: Frame, reuse: bool, part: str = "frame") -> Pending:
        assert self.chain is not None
        self.held = frame  # offered again if it cannot start now (out of memory)
        pending = self.chain.prepare(frame, reuse, part)
        self.held = None
        return pending

    def fail(self, error: BaseException) -> None:
        if isinstance(error, (UsageError, PluginError)):
            raise error
        self.end(Outcome("failed", message=describe_error(error, self.item.path)))

    def end(self, outcome: Outcome) -> None:
        if self.ended:
            return
        self.ended = True
        self.release()
        self.close_reader()
        if outcome.status == "failed":
            self.context.cancelled.add(self.item.number)
        kind = outcome.kind or (self.source.info.kind if self.source is not None else "")
        iterations = self.chain.iterations if self.chain is not None else 0
        self.emit(Event(self.item.number, dataclasses.replace(outcome, kind=kind, iterations=iterations)))

    def drop(self) -> None:
        """Let go of the files without a word: the run is over, or the input
        failed in another of its units."""
        if not self.ended:
            self.ended = True
            self.release()
            self.close_reader()

    def close_reader(self) -> None:
        if self.frames is not None:
            self.frames.close()
        if self.source is not None:
            self.source.close()

    def release(self) -> None:
        """Let go of the output being written (abort, keeping finished frames)."""


class ItemStream(Stream):
    """An image, or a video read whole, written as its frames finish."""

    def __init__(self, item: Item, context: Context, emit: Emit) -> None:
        super().__init__(context, emit)
        self.item = item
        self.writer: Writer | None = None
        self.kept = 0

    def begin(self, whole_video: bool) -> bool:
        """Open the input and its output; False if that failed."""
        settings, hooks = self.context.settings, self.context.hooks
        try:
            writer_spec = writer_for(self.item.output, settings, hooks)
            self.source = open_source(self.item.path, settings, hooks)
            info = self.source.info
            self.emit(Event(self.item.number, SourceStart(self.item.number, self.item.total, self.item.path,
                                                          self.item.output, info)))
            with writing(self.item.output):
                self.writer = writer_spec.open(self.item.output, info)
            if hasattr(self.writer, "resume"):
                digest = self.context.runtime.weights.digest
                self.kept = self.writer.resume(fingerprint(settings, info, digest), not settings.overwrite)
                if self.kept:
                    log.info("%s: resuming after frame %d (finished frames are reused)", info.path, self.kept)
            self.chain = Chain(self.item, info, self.context, self.emit)
            self.frames = ReadAhead(enumerate(self.source.frames()), self.context.runtime.working_frame)
        except (UsageError, PluginError):
            raise
        except Exception as error:
            self.fail(error)
            return False
        return True

    def next_work(self) -> Pending | None:
        frame = self.next_frame()
        if frame is None:
            self.complete()
            return None
        return self.start(frame, reuse=frame.index < self.kept)

    def finish(self, pending: Pending) -> None:
        assert self.writer is not None and self.chain is not None
        written = self.chain.result(pending, lambda index, part: self.writer.kept(index))  # type: ignore[union-attr,attr-defined]
        with writing(self.item.output):
            self.writer.write(written)  # a reused frame too: the writer encodes every frame again
        self.chain.ended(pending, written)

    def complete(self) -> None:
        """Every frame is written: finish the output under its final name."""
        assert self.writer is not None and self.chain is not None and self.source is not None
        if not self.chain.frames:
            raise InputError("no frames could be read")
        with writing(self.item.output):
            self.writer.close()
        self.writer = None
        preview_path(self.item.output).unlink(missing_ok=True)  # the result itself is there now
        self.end(Outcome("done", frames=self.chain.frames))

    def release(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


class SegmentStream(Stream):
    """One segment of a split video: its frames from its own opening of the
    file, each kept on disk by index as soon as it is done."""

    def __init__(self, unit: VideoSegment, context: Context, emit: Emit) -> None:
        super().__init__(context, emit)
        self.unit, self.item = unit, unit.item
        self.store: Any = None
        self.done: dict[str, set[int]] = {}

    def open(self) -> None:
        settings, hooks = self.context.settings, self.context.hooks
        self.source = open_source(self.item.path, settings, hooks)
        self.emit(Event(self.item.number, SourceStart(self.item.number, self.item.total, self.item.path,
                                                      self.item.output, self.source.info)))
        self.store = writer_for(self.item.output, settings, hooks).open(self.item.output, self.unit.info)
        self.done = {part: self.store.finished(part) for part in ("frame", "tail", "head")}
        self.chain = Chain(self.item, self.unit.info, self.context, self.emit)
        self.frames = ReadAhead(enumerate(self.source.frames()), self.context.runtime.working_frame,
                                motion_from=self.unit.segment.start + 1)

    def part(self, index: int) -> str:
        segment, later = self.unit.segment, self.unit.later
        if index < segment.owned:
            return "head"
        return "tail" if later is not None and index in later.head else "frame"

    def next_work(self) -> Pending | None:
        if self.frames is None:
            self.open()
        segment = self.unit.segment
        while (frame := self.next_frame()) is not None:
            if frame.index < segment.start:
                continue
            if frame.index >= segment.end:
                break
            part = self.part(frame.index)
            return self.start(frame, frame.index in self.done[part], part)
        self.end(Outcome("part", frames=self.chain.frames if self.chain else 0))
        return None

    def finish(self, pending: Pending) -> None:
        assert self.chain is not None
        written = self.chain.result(pending, self.store.kept)
        if not pending.reuse:
            with writing(self.item.output):
                self.store.keep(pending.index, written, pending.part)
        self.chain.ended(pending, written)


def assemble(unit: AssembleVideo, context: Context, emit: Emit) -> None:
    """The split video's output: each frame as its segment kept it, a tail
    frame cross-faded into the later segment's head, written in order."""
    settings, hooks = context.settings, context.hooks
    writer: Any = None
    try:
        with writing(unit.item.output):
            writer = writer_for(unit.item.output, settings, hooks).open(unit.item.output, unit.info)
            writer.resume(unit.fingerprint, True)  # the plan prepared the frames (or cleared them)
            for segment, later in zip(unit.segments, [*unit.segments[1:], None], strict=True):
                for index in range(segment.owned, segment.end):
                    writer.write(assembled_frame(writer, index, later))
            writer.close()
        writer = None
        emit(Event(unit.item.number, Outcome("done", kind="video", frames=unit.segments[-1].end)))
    except (UsageError, PluginError):
        raise
    except FileNotFoundError as error:
        message = f"a finished frame is missing ({error.filename}); run again to redo it"
        emit(Event(unit.item.number, Outcome("failed", kind="video", message=message)))
    except Exception as error:
        emit(Event(unit.item.number, Outcome("failed", kind="video", message=describe_error(error, unit.item.path))))
    finally:
        if writer is not None:
            writer.abort()


def assembled_frame(writer: Any, index: int, later: Segment | None) -> np.ndarray:
    if later is None or index not in later.head:
        return writer.kept(index, "frame")
    faded = splitting.cross_fade(writer.kept(index, "tail"), writer.kept(index, "head"),
                                 splitting.fade_weight(later, index))
    writer.keep(index, faded, "frame")  # a folder of frames holds the faded frame too
    return faded


def describe_error(error: BaseException, path: Path) -> str:
    """One line for an input's failure."""
    if isinstance(error, FramestyleError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
    log.debug("traceback for %s", path, exc_info=error)  # a plugin's or a codec's bug must not end the batch
    return f"{type(error).__name__}: {error}"


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Report an OS error while writing (disk full, permission, a vanished
    folder) as this output's failure, naming the output."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def fingerprint(settings: Settings, info: SourceInfo, weights_digest: str,
                segments: list[Segment] | None = None) -> str:
    """What decides a source's stylised frames: the settings that shape the
    result, the source file as it is, the weights, and where the video was
    split into segments (each starts cold). Finished frames are reused only
    by a run with the same fingerprint."""
    shaping = settings.to_json()
    for name in ("inputs", "output", "verbosity", "overwrite", "exitfirst", "loader", "writer",
                 "format", "video_format", "device", "batch_size", "compile", "executor"):
        shaping.pop(name, None)
    stat = info.path.stat()
    split = [dataclasses.astuple(segment) for segment in segments or []]
    blob = json.dumps([shaping, str(info.path.resolve()), stat.st_size, stat.st_mtime_ns,
                       weights_digest] + ([split] if len(split) > 1 else []), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()

