"""The units a run is planned into, and the events running them gives.

A unit is small and picklable: paths, settings and plan data, never an open
file, a tensor or the plugin host, so that any executor can run it in any
process (:func:`framestyle.engine.runner.unit.run_unit`). Units of one input that must
follow others say so in ``needs`` (a segmented video's assembly needs its
segments).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.engine.planning.segments import Segment
    from framestyle.engine.schedule import StyleTimeline
    from framestyle.events import FrameEnd, FrameStart, SourceStart, Step
    from framestyle.settings import Settings
    from framestyle.types import SourceInfo


@dataclass(frozen=True)
class Item:
    """One input and where its output goes."""

    number: int  # 1-based position in the run
    total: int  # inputs in the run
    path: Path
    output: Path
    styles: StyleTimeline | None = None  # a video's --style-at schedule, resolved by the plan
    made_with: str = ""  # the settings, source and weights its output is made with (frame_store.made_with)


@dataclass(frozen=True)
class ImageGroup:
    """Images of one working size, optimised together (one batch)."""

    items: tuple[Item, ...]

    @property
    def uid(self) -> str:
        return "images:" + ",".join(str(item.number) for item in self.items)

    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class WholeVideo:
    """A video read in order: one warm-start chain, written as it goes,
    resumed from its finished frames."""

    item: Item

    @property
    def uid(self) -> str:
        return f"video:{self.item.number}"

    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoSegment:
    """One segment of a split video: its frames optimised as a warm-start
    chain of their own and kept on disk by index. Frames that the ``later``
    segment's head overlaps are kept as ``tail`` frames, to be cross-faded by
    the assembly."""

    item: Item
    info: SourceInfo
    segment: Segment
    later: Segment | None
    needs: tuple[str, ...] = ()

    @property
    def uid(self) -> str:
        return f"segment:{self.item.number}:{self.segment.owned}"


@dataclass(frozen=True)
class EncodeChunk:
    """Frames ``first`` to ``end`` of a split video, from its kept frames
    (the seams cross-faded), encoded into a chunk file of the frame store
    that the assembly joins; it needs the segments that keep them."""

    item: Item
    info: SourceInfo
    segments: tuple[Segment, ...]
    first: int
    end: int
    needs: tuple[str, ...] = ()

    @property
    def uid(self) -> str:
        return f"chunk:{self.item.number}:{self.first}"


@dataclass(frozen=True)
class AssembleVideo:
    """A split video's output from its kept frames: the seams cross-faded
    (a pure function of the kept frames), then encoded and muxed; or, for a
    writer that joins chunks, its ``chunks`` (first, end) joined."""

    item: Item
    info: SourceInfo
    segments: tuple[Segment, ...]
    fingerprint: str
    needs: tuple[str, ...] = ()
    chunks: tuple[tuple[int, int], ...] = ()

    @property
    def uid(self) -> str:
        return f"assemble:{self.item.number}"


Unit = ImageGroup | WholeVideo | VideoSegment | EncodeChunk | AssembleVideo


def items_of(unit: Unit) -> tuple[Item, ...]:
    return unit.items if isinstance(unit, ImageGroup) else (unit.item,)


@dataclass(frozen=True)
class RunSpec:
    """What a process needs to rebuild a run's context and run its units
    exactly as the driver's own process would."""

    settings: Settings
    plugins: tuple[str, ...]  # the -p arguments
    autoload: bool | None  # entry-point plugins (None: as the environment says)
    capacity: int  # frames optimised together
    lanes: int  # the most frames the run keeps in flight: the CPU pass layout follows it
    weights_digest: str  # the weights the plan was fingerprinted with


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Outcome:
    """How a unit ended for one of its inputs: ``done``, ``failed`` or
    ``interrupted``; ``part`` when it finished one part (a segment) of an
    input that another unit completes."""

    status: str
    kind: str = ""
    frames: int = 0
    iterations: int = 0
    message: str = ""


@dataclass(frozen=True)
class Event:
    """One event of a unit, for the driver: ``payload`` is a hook event
    (:class:`SourceStart`, :class:`FrameStart`, :class:`Step`,
    :class:`FrameEnd`) or an :class:`Outcome`, about input ``item``."""

    item: int
    payload: SourceStart | FrameStart | Step | FrameEnd | Outcome
