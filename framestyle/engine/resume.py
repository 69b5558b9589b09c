"""What decides whether finished frames may be reused by a later run."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from framestyle.engine.segments import Segment
from framestyle.settings import Settings
from framestyle.types import SourceInfo


def fingerprint(settings: Settings, info: SourceInfo, weights_digest: str,
                segments: list[Segment] | None = None) -> str:
    """What decides a source's stylised frames: the settings that shape the
    result, the source file as it is, the weights, and where the video was
    split into segments (each starts cold). Finished frames are reused only
    by a run with the same fingerprint."""
    shaping = settings.to_json()
    for name in ("inputs", "output", "verbosity", "overwrite", "exitfirst", "loader", "writer",
                 "format", "video_format", "device", "batch_size", "compile", "executor", "ray_address",
                 "worker_cores", "tile"):  # tiles give the same result (framestyle.transfer.tiles)
        shaping.pop(name, None)
    stat = info.path.stat()
    split = [dataclasses.astuple(segment) for segment in segments or []]
    blob = json.dumps([shaping, str(info.path.resolve()), stat.st_size, stat.st_mtime_ns,
                       weights_digest] + ([split] if len(split) > 1 else []), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
