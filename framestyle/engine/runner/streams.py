"""An input's frames as streams for the batch scheduler: an image or a
whole video written as its frames finish, or one segment of a split video
kept frame by frame. Each frame starts from the last one's result where the
shot goes on (:class:`Chain`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from framestyle.engine.formats import open_source, open_writer, writer_for
from framestyle.engine.frame_store import VIDEO_END_NOTE, FrameStore, discard_store, fingerprint
from framestyle.engine.runner.chain import Chain, Emit, InFlight
from framestyle.engine.runner.context import UnitContext
from framestyle.engine.runner.read_ahead import DecodedFrame, ReadAhead
from framestyle.engine.units import Event, Item, Outcome, VideoSegment
from framestyle.errors import InputError, PluginError, UsageError, describe_error
from framestyle.events import SourceStart
from framestyle.media.images import preview_path
from framestyle.media.window import frames_from
from framestyle.types import Source, Writer

log = logging.getLogger("framestyle")


class Stream:
    """One input's frames in order for the scheduler; it ends once, as done,
    failed or interrupted (or a finished part), releasing its files then."""

    item: Item

    def __init__(self, context: UnitContext, emit: Emit) -> None:
        self.context, self.emit = context, emit
        self.source: Source | None = None
        self.frames: ReadAhead | None = None
        self.held: DecodedFrame | None = None
        self.ended = False
        self.chain: Chain | None = None

    @property
    def cancelled(self) -> bool:
        return self.ended or self.item.number in self.context.cancelled

    def next_frame(self) -> DecodedFrame | None:
        assert self.frames is not None
        return self.held or next(self.frames, None)

    def start(self, frame: DecodedFrame, reuse: bool, part: str = "frame") -> InFlight:
        assert self.chain is not None
        self.held = frame  # offered again if it cannot start now (out of memory)
        started = self.chain.prepare(frame, reuse, part)
        self.held = None
        return started

    def next_work(self) -> InFlight | None:
        """The next frame's optimisation, or None when the stream is done."""
        raise NotImplementedError

    def finish(self, frame: InFlight) -> None:
        """Take a finished frame (write or keep it)."""
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        """The stream (its input) failed with ``error``; a usage or plugin error ends the run."""
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
                self.writer = open_writer(writer_spec, self.item.output, info, settings)
                if info.kind == "video":
                    self.store = FrameStore(self.item.output)
                    digest = self.context.runtime.weights.digest
                    self.kept = self.store.resume(fingerprint(settings, info, digest), not settings.overwrite,
                                                  self.item.styles)
            if self.kept:
                log.info("%s: resuming after frame %d (finished frames are reused)", info.path, self.kept)
            self.chain = Chain(self.item, info, self.context, self.emit)
            self.frames = ReadAhead(enumerate(self.source.frames()), self.context.runtime.working_frame,
                                    self.context.motion)
        except (UsageError, PluginError):
            raise
        except Exception as error:
            self.fail(error)
            return False
        return True

    def next_work(self) -> InFlight | None:
        frame = self.next_frame()
        if frame is None:
            self.complete()
            return None
        return self.start(frame, reuse=frame.index < self.kept)

    def finish(self, done: InFlight) -> None:
        assert self.writer is not None and self.chain is not None
        store = self.store
        written = self.chain.result(done, lambda index, part: cast(FrameStore, store).kept(index))
        with writing(self.item.output):
            if store is not None:
                store.add(written)
            self.writer.write(written)  # a reused frame too: the writer writes every frame
        self.chain.ended(done, written)

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
        self.kept_parts: dict[str, set[int]] = {}  # by part, what earlier runs left
        self.read = 0  # one past the last frame read (frames_from starts at the segment's first)

    def open(self) -> None:
        settings, hooks = self.context.settings, self.context.hooks
        self.source = open_source(self.item.path, settings, hooks)
        self.emit(Event(self.item.number, SourceStart(self.item.number, self.item.total, self.item.path,
                                                      self.item.output, self.source.info)))
        self.kept_parts = self.store.kept_by_part()
        self.chain = Chain(self.item, self.unit.info, self.context, self.emit)
        self.frames = ReadAhead(frames_from(self.source, self.unit.segment.start), self.context.runtime.working_frame,
                                self.context.motion)

    def part(self, index: int) -> str:
        segment, later = self.unit.segment, self.unit.later
        if index < segment.owned:
            return "head"
        return "tail" if later is not None and index in later.head else "frame"

    def next_work(self) -> InFlight | None:
        if self.frames is None:
            self.open()
        segment = self.unit.segment
        while (frame := self.next_frame()) is not None:
            self.read = frame.index + 1
            if frame.index >= segment.end:
                break
            part = self.part(frame.index)
            return self.start(frame, frame.index in self.kept_parts[part], part)
        if 0 < self.read < segment.end:  # fewer frames decode than the container counts: the video ends here
            self.store.remember(VIDEO_END_NOTE, str(self.read))  # (none read: a seek past the end says nothing)
        self.end(Outcome("part", frames=self.chain.frames if self.chain else 0))
        return None

    def finish(self, done: InFlight) -> None:
        assert self.chain is not None
        written = self.chain.result(done, self.store.kept)
        if not done.reuse:
            with writing(self.item.output):
                self.store.keep(done.index, written, done.part)
        self.chain.ended(done, written)


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Report an OS error while writing (disk full, permission, a vanished
    folder) as this output's failure, naming the output."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
