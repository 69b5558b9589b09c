"""The driver's plan: inputs into units of work.

Inputs are walked and named (:mod:`framestyle.engine.planning.inputs`); finished outputs
are skipped (resume); images are grouped by the size they are optimised at,
so that a group is one batch; a video is split into segments where frames
optimised side by side pay (a GPU, or ``--batch-size``). The plan touches
inputs only to read headers and, for a video to be split, its container's
packets for its length (see :func:`split`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import astuple, dataclass, field
from itertools import islice
from pathlib import Path

from framestyle.engine.formats import kind_of, open_source, writer_for
from framestyle.engine.frame_store import FrameStore, discard_store, fingerprint, made_with
from framestyle.engine.planning import segments as splitting
from framestyle.engine.planning.inputs import find_inputs
from framestyle.engine.planning.segments import Segment
from framestyle.engine.runtime import Runtime
from framestyle.engine.schedule import resolve_timeline
from framestyle.engine.units import AssembleVideo, EncodeChunk, ImageGroup, Item, Unit, VideoSegment, WholeVideo
from framestyle.errors import PluginError, UsageError, describe_error
from framestyle.host import Hooks
from framestyle.media.images import IMAGE_EXTENSIONS, image_size
from framestyle.media.motion import Flow
from framestyle.media.motion import estimate as estimate_motion
from framestyle.media.sequence import SequenceSource
from framestyle.media.video import VideoSource, packet_timing
from framestyle.media.window import FrameWindow, frames_from
from framestyle.records.manifest import JOURNAL_FILE, MANIFEST_FILE, beside, read_items, read_journal
from framestyle.settings import Settings
from framestyle.types import Source, SourceInfo

log = logging.getLogger("framestyle")

SPLIT_NOTE = "segments"  # the segment plan, kept with a split video's frames


@dataclass
class Plan:
    units: list[Unit] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)  # outputs already complete
    redone: list[Item] = field(default_factory=list)  # complete outputs made with other settings: made again
    failed: list[tuple[Item | None, Path, str]] = field(default_factory=list)  # inputs that cannot be planned
    unclaimed: list[Path] = field(default_factory=list)  # files in folders that no loader reads
    to_file: bool = False  # -o names the one output file
    frames: int = 0  # frames in the whole job (an image is one; a video as its header claims)
    total: int = 0  # inputs, whatever becomes of them


def make_plan(settings: Settings, hooks: Hooks, runtime: Runtime, capacity: int, segments: int,
              workers: int = 1) -> Plan:
    """The run's units, in the order they should start: images in groups of
    up to ``capacity`` (fewer where ``workers`` would otherwise wait),
    videos split into up to ``segments`` (1: unsplit)."""
    found = find_inputs(settings, hooks.loaders(), hooks.writers())
    total = len(found.items)
    numbered = [Item(n, total, work.path, work.output, made_with=made_with(settings, work.path, runtime.weights.digest))
                for n, work in enumerate(found.items, start=1)]
    recorded = recorded_made_with(settings, found.to_file)
    plan = Plan(failed=[(None, path, message) for path, message in found.failures], unclaimed=found.unclaimed,
                to_file=found.to_file, total=total)
    sizes: dict[int, tuple[int, int]] = {}  # a batch holds images of one size: read from headers, once
    if capacity > 1:  # plan them in order of size
        sizes = {item.number: working_size(item.path, runtime) for item in numbered}
        numbered.sort(key=lambda item: sizes[item.number])
        still = sum(1 for size in sizes.values() if size != (0, 0))
        capacity = min(capacity, max(1, math.ceil(still / workers)))
    groups: list[list[Item]] = []  # in order of their first image
    filling: dict[tuple[int, int], list[Item]] = {}  # by working size, the group with room left
    for item in numbered:
        complete = not settings.overwrite and writer_for(item.output, settings, hooks).is_complete(item.output)
        if complete and recorded.get(str(item.output), item.made_with) not in ("", item.made_with):
            log.info("%s: made with other settings (or another source or weights); making it again", item.output)
            plan.redone.append(item)
            complete = False
        if complete:
            if not settings.dry_run:
                discard_store(item.output)  # what a run killed between completing it and this left
            plan.skipped.append(item)
        elif kind_of(item.path, settings, hooks.loaders()) == "video":
            plan.units += video_units(item, settings, hooks, runtime, segments, plan)
        else:
            plan.frames += 1
            size = sizes.get(item.number, (0, 0))
            group = filling.get(size)
            if group is None or len(group) >= capacity or size == (0, 0):
                group = filling[size] = []
                groups.append(group)
                plan.units.append(ImageGroup(()))  # its place in the order; filled in below
            group.append(item)
    images = iter(groups)
    plan.units = [ImageGroup(tuple(next(images))) if isinstance(unit, ImageGroup) else unit for unit in plan.units]
    return plan


def recorded_made_with(settings: Settings, to_file: bool) -> dict[str, str]:
    """What each output in the run records was made with (an older run's
    records say nothing: its outputs are taken as they are)."""
    if settings.output is None:
        return {}
    output = Path(settings.output)
    records = [*read_items(beside(output, to_file, MANIFEST_FILE)),
               *read_journal(beside(output, to_file, JOURNAL_FILE))]
    return {str(record.get("output")): str(record.get("made_with", "")) for record in records
            if record.get("status") == "done"}


def working_size(path: Path, runtime: Runtime) -> tuple[int, int]:
    """(height, width) an image is optimised at, from its header; (0, 0)
    for videos and for files whose header cannot be read (they fail, or
    not, when their turn comes)."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return (0, 0)
    try:
        width, height = image_size(path, runtime.settings.max_pixels)
    except Exception:
        return (0, 0)
    (width, height), _ = runtime.sizes(width, height)
    return (height, width)


def video_units(item: Item, settings: Settings, hooks: Hooks, runtime: Runtime, wanted: int,
                plan: Plan) -> list[Unit]:
    """A video as one unit, or split into ``wanted`` segments and their
    assembly; the segments' frame store is prepared here, once, so that
    segments running at the same time never race to clear it."""
    info: SourceInfo | None = None
    try:
        flow = hooks.flows().get(settings.flow).estimate
        source = open_source(item.path, settings, hooks)
        try:
            info = source.info
            plan.frames += max(1, info.frame_count or 1)
            item = scheduled(item, info, settings, hooks, runtime, flow)
            store = FrameStore(item.output)
            base = fingerprint(settings, info, runtime.weights.digest)
            segments = None if settings.overwrite else saved_split(store, base, item.path)
            if segments is None:
                if wanted < 2:
                    return [WholeVideo(item)]
                segments = split(source, runtime, wanted, flow)
        finally:
            source.close()
        if segments is None:
            return [WholeVideo(item)]
        print_ = fingerprint(settings, info, runtime.weights.digest, segments)
        if not settings.dry_run:
            store.resume(print_, not settings.overwrite, item.styles)
            store.remember(SPLIT_NOTE, json.dumps({"fingerprint": base, "segments": [astuple(s) for s in segments]}))
    except (UsageError, PluginError):
        raise
    except Exception as error:
        plan.frames += 1 if info is None else 0  # unopened: one frame, as an image
        plan.failed.append((item, item.path, describe_error(error, item.path)))
        return []
    parts = [VideoSegment(item, info, segment, later)
             for segment, later in zip(segments, [*segments[1:], None], strict=True)]
    if writer_for(item.output, settings, hooks).chunks is None:  # one unit encodes it all
        return [*parts, AssembleVideo(item, info, tuple(segments), print_, needs=tuple(u.uid for u in parts))]
    ranges = splitting.chunk_ranges(segments[-1].end)
    chunks = [EncodeChunk(item, info, tuple(segments), first, end,
                          needs=tuple(u.uid for u in parts if u.segment.start < end and u.segment.end > first))
              for first, end in ranges]
    return [*parts, *chunks, AssembleVideo(item, info, tuple(segments), print_,
                                           needs=tuple(chunk.uid for chunk in chunks), chunks=tuple(ranges))]


def scheduled(item: Item, info: SourceInfo, settings: Settings, hooks: Hooks, runtime: Runtime, flow: Flow) -> Item:
    """``item`` with its ``--style-at`` schedule resolved for its frames."""
    if not settings.style_at:
        return item

    def starts_shot(index: int) -> bool:
        """Whether the video cuts at frame ``index``: it and the frame before
        it read from a fresh opening (any loader seeks so), compared by the
        run's flow at the size they are optimised at."""
        source = open_source(item.path, settings, hooks)
        try:
            pair = [runtime.working_frame(frame)[0] for _, frame in islice(frames_from(source, index - 1), 2)]
        finally:
            source.close()
        return len(pair) == 2 and estimate_motion(pair[0], pair[1], flow).cut

    timeline = resolve_timeline(settings, info.fps, runtime.style_weights[:len(settings.style)], starts_shot)
    return dataclasses.replace(item, styles=timeline)


def saved_split(store: FrameStore, base: str, path: Path) -> list[Segment] | None:
    """The segments an earlier run split this video into, where it kept
    frames that this run may reuse: a run with other workers or another
    ``--batch-size`` keeps that plan rather than redo the frames."""
    try:
        note = json.loads(store.recall(SPLIT_NOTE) or "null")
        if not note or note["fingerprint"] != base:
            return None
        segments = [Segment(*map(int, edges)) for edges in note["segments"]]
    except (ValueError, TypeError, KeyError):
        return None
    if not any(store.kept_by_part().values()):
        return None
    log.info("%s: %s, as the run that kept some of its frames split it", path, splitting.describe(segments))
    return segments


def split(source: Source, runtime: Runtime, wanted: int, flow: Flow) -> list[Segment] | None:
    """Split the video into up to ``wanted`` segments; None when it is too
    short to split. A video file's frames are counted from its container's
    packets, a sequence's are its numbers, without decoding: the boundaries go where an even split puts
    them, and each segment finds the scene cuts in its own frames as it runs
    (a cut inside a segment's overlap restarts both chains alike, so it
    costs nothing), so no worker waits for the driver to decode the film.
    Where a loader's frames cannot be counted so, they are read once for
    their number and their cuts, and boundaries go to cuts near where an
    even split puts them."""
    path = source.info.path
    counted = count_without_decoding(source)
    cuts: list[int] = []
    if counted is not None:
        count, found = counted
    else:
        count, cuts = scan(source, runtime, flow)
        found = f"{len(cuts)} scene cut(s)"
    segments = splitting.plan_segments(count, wanted, cuts)
    if len(segments) < 2:
        return None
    log.info("%s: %d frames, %s; %s", path, count, found, splitting.describe(segments))
    return segments


def count_without_decoding(source: Source) -> tuple[int, str] | None:
    """A video's frames counted from its container's packets, a sequence's
    from its numbers, a part's from the whole's; None where only decoding tells."""
    if isinstance(source, FrameWindow):
        whole = count_without_decoding(source.source)
        return None if whole is None else (source.length(whole[0]), whole[1])
    if isinstance(source, VideoSource):
        timing = packet_timing(source.info.path)
        return None if timing is None else (timing[0], "counted in the container")
    if isinstance(source, SequenceSource) and source.info.frame_count:
        return source.info.frame_count, "numbered files"
    return None


def scan(source: Source, runtime: Runtime, flow: Flow) -> tuple[int, list[int]]:
    """The video's frame count and its scene cuts, read frame by frame."""
    cuts: list[int] = []
    count, last = 0, None
    for index, frame in enumerate(source.frames()):
        working = runtime.working_frame(frame)[0]
        if last is not None and estimate_motion(last, working, flow).cut:
            cuts.append(index)
        last, count = working, index + 1
    return count, cuts
