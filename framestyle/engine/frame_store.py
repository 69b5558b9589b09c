"""Finished video frames, kept by the engine for every writer.

Each video's finished frames are kept as numbered PNGs in a hidden folder
beside its output (``.out.mp4.framestyle-work/``) as soon as they are done,
with the fingerprint of the run that made them: an interrupted run resumes
from them, and the segments of a split video keep their frames there in any
order, in any process, for the assembly to read back in order. Writers never
see any of it: they get each frame once, in order. The folder goes once the
output is complete. Frames are reused only by a run with the same
:func:`fingerprint`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framestyle.engine.schedule import StyleTimeline, first_changed
from framestyle.errors import InputError
from framestyle.media.images import read_frame, write_image_atomic, write_text_atomic
from framestyle.media.sequence import is_sequence, sequence_identity
from framestyle.settings import Settings
from framestyle.types import SourceInfo

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.engine.planning.segments import Segment

FINGERPRINT = "fingerprint.json"
NOTE = ".note.json"  # notes kept with the frames (a split video's segment plan), gone with them
VIDEO_END_NOTE = "video-end"  # frames a segment found the video to have, where fewer than planned
STYLES_NOTE = "styles"  # the --style-at schedule the kept frames were made with
PARTS = ("frame", "tail", "head")


def store_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.framestyle-work")


class FrameStore:
    """A video's finished frames, only reused by a run with the same
    fingerprint (settings, source, weights). Besides the frames (part
    ``frame``) it keeps the two results of frames where a split video's
    segments overlap: the earlier segment's (``tail``) and the later one's
    (``head``), from which the written frame is cross-faded."""

    def __init__(self, output: Path) -> None:
        self.folder = store_folder(output)
        self.count = 0  # frames added in order so far in this run
        self.reusable = 0

    def path(self, index: int, part: str = "frame") -> Path:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}")
        return self.folder / f"{part}_{index + 1:06d}.png"

    def resume(self, fingerprint: str, reuse: bool = True, styles: StyleTimeline | None = None) -> int:
        """How many frames from the first on an earlier run with this
        ``fingerprint`` left (none, with ``reuse`` false: they are cleared);
        records ``fingerprint`` for the next run. Frames from the first
        whose ``--style-at`` styles changed on are cleared too (each frame
        starts from the one before it, so the later ones changed as well)."""
        marker = self.folder / FINGERPRINT
        if not marker.is_file() and any(self.folder.glob("frame_*.png")):
            raise InputError(f"{self.folder} holds frames framestyle did not make; move them away")
        if previous_fingerprint(marker) != fingerprint or not reuse:
            for pattern in [*(f"{part}_*.png" for part in PARTS), "chunk_*"]:
                for old in self.folder.glob(pattern):
                    old.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.drop_restyled(styles)
        write_text_atomic(marker, json.dumps(fingerprint))
        while self.path(self.reusable).is_file():
            self.reusable += 1
        return self.reusable

    def drop_restyled(self, styles: StyleTimeline | None) -> None:
        kept = self.kept_by_part()
        frames = 1 + max((index for indices in kept.values() for index in indices), default=-1)
        first = first_changed(styles, StyleTimeline.from_json(self.recall(STYLES_NOTE)), frames)
        if first is not None:
            for part, indices in kept.items():
                for index in indices:
                    if index >= first:
                        self.path(index, part).unlink(missing_ok=True)
            for chunk in self.folder.glob("chunk_*"):
                chunk.unlink()
        self.remember(STYLES_NOTE, styles.to_json() if styles is not None else "null")

    def chunk(self, first: int, end: int, suffix: str) -> Path:
        """Where frames ``first`` to ``end`` are kept encoded (a writer's chunk)."""
        return self.folder / f"chunk_{first + 1:06d}-{end:06d}{suffix}"

    def kept_indices(self, part: str = "frame") -> set[int]:
        """Indices of the kept frames (or other parts)."""
        found = set()
        for path in self.folder.glob(f"{part}_*.png"):
            number = path.stem.partition("_")[2]
            if number.isdigit() and int(number) > 0:
                found.add(int(number) - 1)
        return found

    def kept_by_part(self) -> dict[str, set[int]]:
        """The kept indices of every part."""
        return {part: self.kept_indices(part) for part in PARTS}

    def kept(self, index: int, part: str = "frame") -> np.ndarray:
        return read_frame(self.path(index, part))

    def keep(self, index: int, frame: np.ndarray, part: str = "frame") -> None:
        """Keep a frame now: segments running at the same time keep theirs
        without disturbing each other (one atomic file each)."""
        write_image_atomic(self.path(index, part), frame)

    def add(self, frame: np.ndarray) -> None:
        """The next frame in order; one kept before (a resumed run's) is on disk already."""
        if self.count >= self.reusable and not self.path(self.count).is_file():
            write_image_atomic(self.path(self.count), frame)
        self.count += 1

    def recall(self, name: str) -> str | None:
        try:
            return (self.folder / f"{name}{NOTE}").read_text()
        except OSError:
            return None

    def remember(self, name: str, text: str) -> None:
        write_text_atomic(self.folder / f"{name}{NOTE}", text)


def discard_store(output: Path) -> None:
    """The frames are not needed once ``output`` is complete."""
    shutil.rmtree(store_folder(output), ignore_errors=True)


def previous_fingerprint(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):  # none yet, or cut short by a kill: reuse nothing
        return None


def source_identity(path: Path) -> list[object]:
    """The source file as it is now (a sequence: each of its files)."""
    if is_sequence(path):
        return [sequence_identity(path)]
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


# Settings that never change what an output looks like: where things go,
# what is said about them, and how the work is spread (tiles give the same
# result: framestyle.transfer.tiles).
NOT_IN_RESULT = ("inputs", "output", "verbosity", "overwrite", "dry_run", "exitfirst", "loader",
                 "format", "video_format", "device", "batch_size", "compile", "executor", "ray_address",
                 "worker_cores", "tile", "report", "preview")


# And those that change the file written but not its frames: the writer and
# its encoding, the rate of a sequence's video; a schedule's changes clear
# only the frames they touch (FrameStore.drop_restyled).
NOT_IN_FRAMES = (*NOT_IN_RESULT, "writer", "crf", "fps", "style_at", "style_fade")


def made_with(settings: Settings, path: Path, weights_digest: str) -> str:
    """What decides a finished output: the settings that shape it, its
    source file as it is and the weights. Kept in the run records, so that a
    rerun with other settings redoes the output rather than skip it."""
    shaping = {name: value for name, value in settings.to_json().items() if name not in NOT_IN_RESULT}
    try:
        source = source_identity(path)
    except OSError:
        source = []
    blob = json.dumps([shaping, *source, weights_digest], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint(settings: Settings, info: SourceInfo, weights_digest: str,
                segments: list[Segment] | None = None) -> str:
    """What decides a source's stylised frames: the settings that shape the
    result, the source file as it is, the weights, and where the video was
    split into segments (each starts cold). Finished frames are reused only
    by a run with the same fingerprint."""
    shaping = {name: value for name, value in settings.to_json().items() if name not in NOT_IN_FRAMES}
    split = [dataclasses.astuple(segment) for segment in segments or []]
    blob = json.dumps([shaping, str(info.path.resolve()), *source_identity(info.path),
                       weights_digest] + ([split] if len(split) > 1 else []), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
