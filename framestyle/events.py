"""What observers are told: the events of a run, each handed to its
``on_*`` hook (:mod:`framestyle.hookspecs`) on the driver, in the order
given there. Like :mod:`framestyle.types`, a stable import path for plugins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.settings import Settings
    from framestyle.types import SourceInfo


@dataclass(frozen=True)
class RunStart:
    settings: Settings
    total_items: int
    device: str
    weights: str  # where the VGG-19 weights came from
    frames: int | None = None  # frames in the whole job (an image is one; videos as their headers claim)
    to_file: bool = False  # settings.output names the one output file, not a folder


@dataclass(frozen=True)
class SourceStart:
    item: int  # 1-based position in the run
    total_items: int
    path: Path
    output: Path
    info: SourceInfo | None  # None when the item is skipped before opening


@dataclass(frozen=True)
class FrameStart:
    path: Path
    index: int
    frame_count: int | None  # an estimate for videos, at least index + 1
    width: int
    height: int
    iterations: int  # the budget for this frame (a warm frame may stop sooner)
    warm: bool = False  # started from the previous frame: one level, not coarse to fine


@dataclass(frozen=True)
class Step:
    path: Path
    frame: int
    iteration: int  # 1-based
    iterations: int  # the budget
    loss: float
    losses: Mapping[str, float]
    pixels: int = 0  # of the image this iteration optimised (a coarse level's are fewer)


@dataclass(frozen=True)
class FrameEnd:
    path: Path
    index: int
    iterations: int
    seconds: float
    loss: float
    losses: Mapping[str, float]
    warm: bool = False  # started from the previous frame
    cut: bool = False  # a scene cut was detected before this frame
    reused: bool = False  # kept from an interrupted run, not stylised again
    warp_error: float | None = None  # E_warp against the previous frame (videos)
    source_warp_error: float | None = None  # the source's own E_warp: warp_error's floor
    lag: bool | None = None  # closer in content (content layer) to the previous source frame than its own
    tiles: int = 0  # optimised in this many tiles (0: whole; framestyle.transfer.tiles)
    style: str = ""  # the styles a --style-at schedule gives it ("a.jpg", "a.jpg → b.jpg 40%"); "" without one


@dataclass(frozen=True)
class SourceEnd:
    item: int
    path: Path
    output: Path
    status: str  # "done", "skipped" (already complete), "failed" or "interrupted"
    frames: int
    seconds: float
    message: str = ""
    kind: str = ""  # "image" or "video" ("" when it failed before a loader opened it)
    iterations: int = 0  # over all its frames
    made_with: str = ""  # what decides its output: a rerun with other settings redoes it


@dataclass(frozen=True)
class RunEnd:
    done: int
    skipped: int
    failed: Sequence[tuple[Path, str]]
    interrupted: bool
    seconds: float
    exit_code: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    redone: int = 0  # of ``done``: complete outputs made again, as they were made with other settings
