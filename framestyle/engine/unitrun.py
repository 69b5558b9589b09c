"""Running a unit: the same code on every executor.

:func:`unit_streams` turns a unit into streams of frames for the batch
scheduler (:mod:`framestyle.engine.batch`); :func:`run_unit` runs one unit alone.
Pipeline hooks (``init_image``, ``stylize``, losses, optimizers, writers) run
here, where the unit runs; what happened goes out as small picklable
:class:`~framestyle.engine.units.Event` records, which the driver turns into the
observer hooks, records and reports. Outputs are written atomically by the
writers: a unit cut short leaves finished frames and nothing half-written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from framestyle.engine import segments as splitting
from framestyle.engine.batch import Scheduler
from framestyle.engine.choose import writer_for
from framestyle.engine.context import UnitContext
from framestyle.engine.segments import Segment
from framestyle.engine.streams import Emit, ItemStream, SegmentStream, describe_error, writing
from framestyle.engine.units import AssembleVideo, Event, ImageGroup, Outcome, Unit, VideoSegment, WholeVideo
from framestyle.errors import PluginError, UsageError


def run_unit(unit: Unit, context: UnitContext, emit: Emit) -> None:
    """Run ``unit`` alone, its frames batched as the run's spec says."""
    streams: list[Any] = []
    try:
        scheduler = Scheduler(context.runtime.encode, context.spec.capacity, context.spec.lanes)
        streams = unit_streams(unit, context, emit)
        scheduler.run(streams)
    finally:  # done, or interrupted: nothing stays open
        for stream in streams:
            stream.drop()


def unit_streams(unit: Unit, context: UnitContext, emit: Emit) -> list[Any]:
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


def assemble(unit: AssembleVideo, context: UnitContext, emit: Emit) -> None:
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
