"""An input's frames as streams for the batch scheduler: an image or a
whole video written as its frames finish, or one segment of a split video
kept frame by frame. Each frame starts from the last one's result where the
shot goes on (:class:`Chain`)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from framestyle.engine.ahead import Frame, ReadAhead
from framestyle.engine.choose import open_source, writer_for
from framestyle.engine.context import PluginContext, UnitContext
from framestyle.engine.frame_store import FrameStore, discard_store
from framestyle.engine.resume import fingerprint
from framestyle.engine.units import Event, Item, Outcome, VideoSegment
from framestyle.errors import FramestyleError, InputError, PluginError, UsageError
from framestyle.host import WrapperCalls
from framestyle.media.images import preview_path, resize
from framestyle.media.motion import warp_error as motion_warp_error
from framestyle.transfer.frame import FrameWork
from framestyle.transfer.pixels import to_tensor
from framestyle.types import FrameEnd, FrameJob, FrameStart, Source, SourceInfo, SourceStart, StylizeResult, Writer

log = logging.getLogger("framestyle")

Emit = Callable[[Event], None]


class Pending:
    """A frame in flight: its optimisation and what writing it needs."""

    def __init__(self, frame: Frame, content: torch.Tensor, previous: np.ndarray | None, warm: bool,
                 reuse: bool, work: Any, part: str, wrappers: WrapperCalls | None = None) -> None:
        self.index, self.content_rgb, self.size, self.motion = frame.index, frame.working, frame.out_size, frame.motion
        self.content, self.previous, self.warm, self.reuse = content, previous, warm, reuse
        self.work = work  # a FrameWork, a plugin's finished StylizeResult, or None (reused)
        self.part = part  # "frame"; "tail": faded into the next segment's head later; "head": only for that fade
        self.wrappers = wrappers  # stylize wrappers around the built-in optimisation
        self.started = time.perf_counter()
        self.iterations, self.loss, self.tiles = 0, math.nan, 0
        self.losses: dict[str, float] = {}

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

    def __init__(self, item: Item, info: SourceInfo, context: UnitContext, emit: Emit) -> None:
        self.item, self.info, self.context, self.emit = item, info, context, emit
        # The last frame as written, back at the working size: what a resumed run reads back.
        self.previous: np.ndarray | None = None
        self.previous_source: np.ndarray | None = None  # its source frame at the working size
        self.previous_features: torch.Tensor | None = None  # that source's content-layer activations
        self.starting: set[int] = set()  # frames announced whose work may be built again (out of memory)
        self.iterations = 0  # over all its frames, heads included
        self.frames = 0  # frames announced as ended
        self.plugins = PluginContext(context.runtime, context.hooks, lambda step: emit(Event(item.number, step)))

    def prepare(self, frame: Frame, reuse: bool, part: str = "frame") -> Pending:
        """A frame's start. A video frame that continues a shot starts warm
        from the previous result warped by the flow of the original frames;
        the first frame and the first after a scene cut start cold."""
        settings, runtime, hooks = self.context.settings, self.context.runtime, self.context.hooks
        previous = self.previous
        content = to_tensor(frame.working, runtime.device)
        motion = frame.motion if previous is not None else None
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
        job = FrameJob(self.info, frame.index, content, settings, self.plugins, motion=motion, warm=warm,
                       iterations=budget, output=self.item.output, previous_rgb=previous,
                       previous_source=self.previous_source)
        init = hooks.init_image(job)
        if not self.context.spec.own_stylize:
            return Pending(frame, content, previous, warm, reuse, hooks.stylize(job, init), part)
        wrappers = hooks.stylize_wrappers(job, init)
        return Pending(frame, content, previous, warm, reuse, FrameWork(job, init), part, wrappers)

    def result(self, pending: Pending, kept: Callable[[int, str], np.ndarray]) -> np.ndarray:
        """The frame to write: the optimised image at the output size, or a
        finished frame read back."""
        if pending.reuse:
            return kept(pending.index, pending.part)
        result = pending.result()
        pending.iterations, pending.loss, pending.losses = result.iterations, result.loss, dict(result.losses)
        pending.tiles = result.tiles
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
        warp_error = source_warp_error = lag = None
        features = self.content_features(pending.content_rgb) if self.info.kind == "video" else None
        if previous is not None and self.previous_source is not None and motion is not None and not motion.cut:
            warp_error = motion_warp_error(styled, previous, motion)
            source_warp_error = motion_warp_error(pending.content_rgb, self.previous_source, motion)
            lag = self.lags(styled, features)
        self.iterations += pending.iterations
        if pending.part != "head":  # a head's frame is announced by the segment that owns it
            self.starting.discard(pending.index)
            self.frames += 1
            self.emit(Event(self.item.number, FrameEnd(
                self.info.path, pending.index, pending.iterations, time.perf_counter() - pending.started,
                pending.loss, pending.losses, warm=pending.warm, cut=bool(motion and motion.cut),
                reused=pending.reuse, warp_error=warp_error, source_warp_error=source_warp_error, lag=lag,
                tiles=pending.tiles)))
        self.previous, self.previous_source, self.previous_features = styled, pending.content_rgb, features

    def content_features(self, rgb: np.ndarray) -> torch.Tensor:
        layer = self.context.settings.content_layer
        with torch.no_grad():
            return self.context.runtime.encode(to_tensor(rgb, self.context.runtime.device), [layer])[layer].float()

    def lags(self, styled: np.ndarray, features: torch.Tensor | None) -> bool:
        """Whether the frame as written is closer in content to the previous
        source frame than to its own: it kept the last frame's content."""
        assert features is not None and self.previous_features is not None
        ours = self.content_features(styled)
        return bool((ours - self.previous_features).square().sum() < (ours - features).square().sum())


class Stream:
    """One input's frames in order for the scheduler; it ends once, as done,
    failed or interrupted (or a finished part), releasing its files then."""

    item: Item

    def __init__(self, context: UnitContext, emit: Emit) -> None:
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
        self.drop()
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

    def __init__(self, item: Item, context: UnitContext, emit: Emit) -> None:
        super().__init__(context, emit)
        self.item = item
        self.writer: Writer | None = None
        self.store: FrameStore | None = None  # a video's finished frames
        self.kept = 0

    def begin(self) -> bool:
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
                if info.kind == "video":
                    self.store = FrameStore(self.item.output)
                    digest = self.context.runtime.weights.digest
                    self.kept = self.store.resume(fingerprint(settings, info, digest), not settings.overwrite)
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
        store = self.store
        written = self.chain.result(pending, lambda index, part: cast(FrameStore, store).kept(index))
        with writing(self.item.output):
            if store is not None:
                store.add(written)
            self.writer.write(written)  # a reused frame too: the writer writes every frame
        self.chain.ended(pending, written)

    def complete(self) -> None:
        """Every frame is written: finish the output under its final name."""
        assert self.writer is not None and self.chain is not None and self.source is not None
        if not self.chain.frames:
            raise InputError("no frames could be read")
        with writing(self.item.output):
            self.writer.close()
        self.writer = None
        discard_store(self.item.output)
        preview_path(self.item.output).unlink(missing_ok=True)  # the result itself is there now
        self.end(Outcome("done", frames=self.chain.frames))

    def release(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


class SegmentStream(Stream):
    """One segment of a split video: its frames from its own opening of the
    file, each kept on disk by index as soon as it is done."""

    def __init__(self, unit: VideoSegment, context: UnitContext, emit: Emit) -> None:
        super().__init__(context, emit)
        self.unit, self.item = unit, unit.item
        self.store = FrameStore(unit.item.output)  # the plan prepared it
        self.done: dict[str, set[int]] = {}

    def open(self) -> None:
        settings, hooks = self.context.settings, self.context.hooks
        self.source = open_source(self.item.path, settings, hooks)
        self.emit(Event(self.item.number, SourceStart(self.item.number, self.item.total, self.item.path,
                                                      self.item.output, self.source.info)))
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
