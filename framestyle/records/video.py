"""The run report of a video: a JSON file next to the output and a summary line.

``clip.mp4`` gets ``clip.mp4.report.json`` with the settings, the versions,
the weights used and, per frame, the iterations, seconds, final losses, the
temporal warp error E_warp (Lai et al. 2018) against the previous frame with
the source's own beside it (its floor), and whether the frame lags: closer in
content to the previous source frame than to its own.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import statistics
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from framestyle.events import FrameEnd
from framestyle.media.images import write_text_atomic
from framestyle.settings import Settings
from framestyle.types import SourceInfo

log = logging.getLogger("framestyle")


def report_path(output: Path) -> Path:
    return output.with_name(output.name + ".report.json")


def versions() -> dict[str, str]:
    import cv2
    import torch

    from framestyle import __version__

    return {"framestyle": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "opencv": cv2.__version__}


FRAME_FIELDS = tuple(field.name for field in fields(FrameEnd) if field.name != "path")


def frame_record(frame: FrameEnd) -> dict[str, Any]:
    """A frame's line in the report, its fields read one by one rather than
    deep-copied by ``asdict``, ten times slower over a film's many frames."""
    record = {name: getattr(frame, name) for name in FRAME_FIELDS}
    record["losses"] = dict(frame.losses)
    return {name: finite(value) if isinstance(value, float) else value for name, value in record.items()}


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class FrameLog:
    """Collects per-frame results of one source; writes the report for videos."""

    def __init__(self, info: SourceInfo, output: Path, settings: Settings, device: str, weights: str) -> None:
        self.info, self.output, self.settings, self.device, self.weights = info, output, settings, device, weights
        self.frames: list[FrameEnd] = []
        self.indices: set[int] = set()
        self.started = time.perf_counter()

    def add(self, end: FrameEnd) -> None:
        """A frame's end. A unit run again (its worker died) reports the
        frames it kept once more, as reused: the first report stands."""
        if end.index not in self.indices:
            self.indices.add(end.index)
            self.frames.append(end)

    def summary(self) -> dict[str, Any]:
        stylised = [f for f in self.frames if not f.reused]
        cold = [f.iterations for f in stylised if not f.warm]
        warm = [f.iterations for f in stylised if f.warm]
        errors = [f.warp_error for f in self.frames if f.warp_error is not None]
        floors = [f.source_warp_error for f in self.frames if f.source_warp_error is not None]
        lags = [f.lag for f in self.frames if f.lag is not None]
        # Wall time: frames in flight together (segments) overlap.
        seconds = time.perf_counter() - self.started
        return {
            "frames": len(self.frames),
            "reused_frames": len(self.frames) - len(stylised),
            "scene_cuts": sum(f.cut for f in self.frames),
            "cold_iterations_mean": statistics.fmean(cold) if cold else None,
            "warm_iterations_mean": statistics.fmean(warm) if warm else None,
            "warp_error_mean": statistics.fmean(errors) if errors else None,
            # The source's own E_warp over the same pairs: how steady the video is to begin with.
            "source_warp_error_mean": statistics.fmean(floors) if floors else None,
            "lagging_frames": sum(lags),
            "frames_checked_for_lag": len(lags),
            "tiled_frames": sum(1 for f in stylised if f.tiles),
            "seconds": seconds,
            "frames_per_minute": 60 * len(stylised) / seconds if seconds else None,
        }

    def finish(self) -> None:
        self.frames.sort(key=lambda frame: frame.index)  # a video's segments finish out of order
        if self.info.kind != "video":
            return
        summary = self.summary()
        document = {
            "output": str(self.output),
            "source": {"path": str(self.info.path), "width": self.info.width, "height": self.info.height,
                       "fps": self.info.fps, "frames_claimed": self.info.frame_count,
                       "frames_read": len(self.frames), "rotation": self.info.rotation},
            "settings": self.settings.to_json(),
            "versions": versions(),
            "device": self.device,
            "weights": self.weights,
            "summary": summary,
            "frames": [frame_record(frame) for frame in self.frames],
        }
        write_text_atomic(report_path(self.output), json.dumps(document, indent=1, default=str))
        log.info("%s: %s", self.info.path, describe(summary))


def describe(summary: dict[str, Any]) -> str:
    parts = [f"{summary['frames']} frames"]
    if summary["reused_frames"]:
        parts.append(f"{summary['reused_frames']} reused")
    if summary["cold_iterations_mean"] is not None:
        parts.append(f"cold frames {summary['cold_iterations_mean']:.0f} iterations")
    if summary["warm_iterations_mean"] is not None:
        parts.append(f"warm frames {summary['warm_iterations_mean']:.1f} on average")
    if summary["scene_cuts"]:
        parts.append(f"{summary['scene_cuts']} scene cut(s)")
    if summary["warp_error_mean"] is not None:
        parts.append(f"E_warp {summary['warp_error_mean']:.5f}")
        if summary.get("source_warp_error_mean"):
            parts.append(f"{summary['warp_error_mean'] / summary['source_warp_error_mean']:.2f}x the source's own")
    if summary.get("lagging_frames"):
        parts.append(f"{summary['lagging_frames']} of {summary['frames_checked_for_lag']} frames lag")
    if summary.get("tiled_frames"):
        parts.append(f"{summary['tiled_frames']} frames in tiles")
    if summary["frames_per_minute"]:
        parts.append(f"{summary['frames_per_minute']:.1f} frames/min")
    return ", ".join(parts)
