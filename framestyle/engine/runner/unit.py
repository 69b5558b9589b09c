"""Running a unit: the same code on every executor.

:func:`unit_streams` turns a unit into streams of frames for the batch
scheduler (:mod:`framestyle.engine.runner.scheduler`); :func:`run_unit` runs one unit alone.
Pipeline hooks (``init_image``, ``stylize``, losses, optimizers, writers) run
here, where the unit runs; what happened goes out as small picklable
:class:`~framestyle.engine.units.Event` records, which the driver turns into the
observer hooks, records and reports. Outputs are written atomically by the
writers: a unit cut short leaves finished frames and nothing half-written.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from framestyle.engine.formats import open_writer, writer_for
from framestyle.engine.frame_store import VIDEO_END_NOTE, FrameStore, discard_store
from framestyle.engine.planning import segments as splitting
from framestyle.engine.planning.segments import Segment
from framestyle.engine.runner.chain import Emit
from framestyle.engine.runner.context import UnitContext
from framestyle.engine.runner.scheduler import Scheduler
from framestyle.engine.runner.streams import ItemStream, SegmentStream, writing
from framestyle.engine.units import AssembleVideo, EncodeChunk, Event, Item, Outcome, Unit, VideoSegment, items_of
from framestyle.errors import InputError, PluginError, UsageError, describe_error
from framestyle.types import SourceInfo, Writer, WriterSpec

log = logging.getLogger("framestyle")


def run_unit(unit: Unit, context: UnitContext, emit: Emit) -> None:
    """Run ``unit`` alone, its frames batched as the run's spec says."""
    streams: list[Any] = []
    try:
        streams = unit_streams(unit, context, emit)  # an assembly runs here, and gives none
        if streams:
            Scheduler(context.runtime.encode, context.spec.capacity, context.spec.lanes).run(streams)
    finally:  # done, or interrupted: nothing stays open
        for stream in streams:
            stream.drop()


def unit_streams(unit: Unit, context: UnitContext, emit: Emit) -> list[Any]:
    """The unit's streams of frames for the scheduler; an assembly, which
    has no frames to optimise, runs now and gives none."""
    if isinstance(unit, AssembleVideo):
        assemble(unit, context, emit)
        return []
    if isinstance(unit, EncodeChunk):
        encode_chunk(unit, context, emit)
        return []
    if isinstance(unit, VideoSegment):
        return [SegmentStream(unit, context, emit)]
    streams = []
    for item in items_of(unit):
        if context.stopping():
            break
        stream = ItemStream(item, context, emit)
        if stream.begin():
            streams.append(stream)
    return streams


def assemble(unit: AssembleVideo, context: UnitContext, emit: Emit) -> None:
    """The split video's output: each frame as its segment kept it, a tail
    frame cross-faded into the later segment's head, written in order; or,
    for a writer that joins chunks, its chunks joined."""
    with failing_alone(unit.item, emit):
        with writing(unit.item.output):
            store = FrameStore(unit.item.output)
            store.resume(unit.fingerprint, True, unit.item.styles)  # the plan prepared the frames (or cleared them)
            spec = writer_for(unit.item.output, context.settings, context.hooks)
            frames = video_end(unit.item, store, unit.segments, warn=True)
            if unit.chunks:
                join_chunks(unit, store, spec, frames)
            else:
                write_frames(lambda: open_writer(spec, unit.item.output, unit.info, context.settings), store,
                             kept_parts(store, unit.segments, 0, frames), unit.segments)
        discard_store(unit.item.output)
        emit(Event(unit.item.number, Outcome("done", kind="video", frames=frames)))


def encode_chunk(unit: EncodeChunk, context: UnitContext, emit: Emit) -> None:
    """Frames ``first`` to ``end`` of a split video, assembled as the whole
    video's are, encoded into their chunk file; a chunk a killed run
    finished is kept."""
    spec = writer_for(unit.item.output, context.settings, context.hooks)
    assert spec.chunks is not None  # the plan makes chunks only for such writers
    with failing_alone(unit.item, emit):
        with writing(unit.item.output):
            store = FrameStore(unit.item.output)
            parts = kept_parts(store, unit.segments, unit.first,
                               min(unit.end, video_end(unit.item, store, unit.segments, warn=False)))
            target = store.chunk(unit.first, unit.end, spec.extensions[0])
            if parts and not spec.is_complete(target):
                part = chunk_info(unit.info, unit.first, unit.end)
                write_frames(lambda: open_writer(spec, target, part, context.settings, chunk=True), store, parts,
                             unit.segments)
        emit(Event(unit.item.number, Outcome("part", kind="video", frames=len(parts))))


def chunk_info(info: SourceInfo, first: int, end: int) -> SourceInfo:
    """The source as far as frames ``first`` to ``end`` are concerned: its
    window is the part of the file they are (where a chunk's alpha is read)."""
    fps = info.fps or 25.0
    start = (info.window[0] if info.window else 0.0) + first / fps
    return dataclasses.replace(info, window=(start, (end - first) / fps))


@contextmanager
def failing_alone(item: Item, emit: Emit) -> Iterator[None]:
    """An error in the block fails this video alone (a usage or plugin error ends the run)."""
    try:
        yield
    except (UsageError, PluginError):
        raise
    except Exception as error:
        emit(Event(item.number, Outcome("failed", kind="video", message=describe_error(error, item.path))))


def write_frames(open_writer: Callable[[], Writer], store: FrameStore, parts: list[tuple[int, tuple[str, ...]]],
                 segments: tuple[Segment, ...]) -> None:
    """The assembled frames, in order, into a writer opened here (aborted if anything fails)."""
    writer = open_writer()
    try:
        for index, needed in parts:
            writer.write(assembled_frame(store, index, needed, segments))
        writer.close()
    except BaseException:
        writer.abort()
        raise


def join_chunks(unit: AssembleVideo, store: FrameStore, spec: WriterSpec, frames: int) -> None:
    assert spec.chunks is not None
    chunks = [store.chunk(first, end, spec.extensions[0]) for first, end in unit.chunks if first < frames]
    missing = [chunk.name for chunk in chunks if not spec.is_complete(chunk)]
    if missing:  # its files went
        raise InputError(f"{missing[0]} was not encoded ({len(missing)} chunk(s) missing); run again to redo them")
    spec.chunks.join(chunks, unit.item.output, unit.info)


def video_end(item: Item, store: FrameStore, segments: tuple[Segment, ...], warn: bool) -> int:
    """The frames the split video has: as planned, or fewer where a segment
    found it to end sooner (said once, by the assembly)."""
    planned = segments[-1].end
    ended = int(store.recall(VIDEO_END_NOTE) or planned)
    if ended < planned and warn:
        log.warning("%s: the video ended after frame %d of the %d its container counts "
                    "(truncated or damaged); the frames read are kept", item.path, ended, planned)
    return min(ended, planned)


def kept_parts(store: FrameStore, segments: tuple[Segment, ...], first: int,
               end: int) -> list[tuple[int, tuple[str, ...]]]:
    """Frames ``first`` to ``end`` with the kept parts each is made of, all
    on disk (else an error that says to run again)."""
    parts = [(index, needed) for index, needed in frame_parts(segments) if first <= index < end]
    kept = store.kept_by_part()
    missing = [index + 1 for index, needed in parts if any(index not in kept[part] for part in needed)]
    if missing:  # a segment ended early (fewer frames decoded than planned), or files went
        raise InputError(f"frame {missing[0]} was not kept by its segment ({len(missing)} frame(s) "
                         "missing); run again to redo them")
    return parts


def frame_parts(segments: tuple[Segment, ...]) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Each frame of the video, with the kept parts it is made of: its
    segment's frame, or where the next segment's head overlaps it, the
    earlier segment's tail and the later one's head."""
    for segment, later in zip(segments, [*segments[1:], None], strict=True):
        for index in range(segment.owned, segment.end):
            yield index, ("tail", "head") if later is not None and index in later.head else ("frame",)


def assembled_frame(store: FrameStore, index: int, parts: tuple[str, ...],
                    segments: tuple[Segment, ...]) -> np.ndarray:
    if parts == ("frame",):
        return store.kept(index, "frame")
    later = next(segment for segment in segments if index in segment.head)
    return splitting.cross_fade(store.kept(index, "tail"), store.kept(index, "head"),
                                splitting.fade_weight(later, index))
