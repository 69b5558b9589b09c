"""Videos in (OpenCV, or numbered image files) and out: an H.264 mp4 with the source's frame rate and
audio, or a folder with one PNG per frame. The engine keeps finished frames
for resuming and splitting (:mod:`framestyle.engine.frame_store`): these
writers only write, frame by frame, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from framestyle.errors import InputError
from framestyle.hookspecs import hookimpl
from framestyle.media.images import (
    drop_stale_partials,
    partial_path,
    write_image_atomic,
)
from framestyle.media.motion import dis_flow
from framestyle.media.sequence import SequenceSource
from framestyle.media.video import (
    VIDEO_EXTENSIONS,
    Mp4Encoder,
    VideoSource,
    exact_fps,
    join_mp4,
    probe_audio,
)
from framestyle.types import Chunks, FlowSpec, LoaderSpec, SourceInfo, WriterSpec

COMPLETE = ".framestyle-complete"  # a folder of frames is complete once this is in it
WRITING = ".framestyle-writing"  # a folder of frames being written by framestyle


class FramesWriter:
    """One PNG per frame in the folder ``target``; complete when the marker is there."""

    def __init__(self, target: Path, info: SourceInfo) -> None:
        ours = (target / COMPLETE).is_file() or (target / WRITING).is_file()
        if not ours and any(target.glob("frame_*.png")):
            raise InputError(f"{target} holds frames framestyle did not make; choose another -o")
        self.folder = target
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        if self.count == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / COMPLETE).unlink(missing_ok=True)
            (self.folder / WRITING).touch()
        write_image_atomic(self.folder / f"frame_{self.count + 1:06d}.png", frame)
        self.count += 1

    def close(self) -> None:
        if self.count == 0:
            raise ValueError(f"{self.folder}: no frame was written")
        index = self.count  # frames past the end (from a longer earlier run) would not belong
        while (stale := self.folder / f"frame_{index + 1:06d}.png").is_file():
            stale.unlink()
            index += 1
        (self.folder / COMPLETE).write_text(f"{self.count} frames\n")
        (self.folder / WRITING).unlink(missing_ok=True)

    def abort(self) -> None:
        pass  # the frames written stay until a rerun writes them again


class Mp4Writer:
    """H.264 mp4 at the source's exact frame rate with its audio track
    (without, for a chunk that is joined later), streamed into ffmpeg under
    a partial name and renamed when complete."""

    def __init__(self, target: Path, info: SourceInfo, sound: bool = True) -> None:
        self.target = target
        self.info = info
        self.sound = sound
        self.partial = partial_path(target)
        self.encoder: Mp4Encoder | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.encoder is None:
            height, width = frame.shape[:2]
            audio = probe_audio(self.info.path) if self.sound and self.info.kind == "video" else None
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.encoder = Mp4Encoder(self.partial, width, height, exact_fps(self.info.fps or 25.0),
                                      self.info.path if audio else None, audio, self.info.window)
        self.encoder.write(frame)

    def close(self) -> None:
        if self.encoder is None:
            raise ValueError(f"{self.target}: no frame was written")
        self.encoder.close()
        self.partial.replace(self.target)  # complete from here on
        drop_stale_partials(self.target)

    def abort(self) -> None:
        if self.encoder is not None:
            self.encoder.abort()


def mp4_chunk(target: Path, info: SourceInfo) -> Mp4Writer:
    return Mp4Writer(target, info, sound=False)


def mp4_join(chunks: Sequence[Path], target: Path, info: SourceInfo) -> None:
    """The chunks joined by stream copy, with the source's sound, renamed into place when complete."""
    partial = partial_path(target)
    audio = probe_audio(info.path)
    join_mp4(chunks, partial, info.path if audio else None, audio, info.window)
    partial.replace(target)
    drop_stale_partials(target)


def mp4_complete(target: Path) -> bool:
    """Written only by renaming a finished file, so presence means complete;
    the header check catches a file that something else cut short."""
    try:
        with open(target, "rb") as f:
            return f.read(12)[4:8] == b"ftyp" and target.stat().st_size > 1024
    except OSError:
        return False


@hookimpl
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    register(LoaderSpec("video", VIDEO_EXTENSIONS, VideoSource, kind="video",
                        description="video files via OpenCV, streamed frame by frame"))
    register(LoaderSpec("sequence", (), SequenceSource, kind="video",
                        description="numbered image files as one video: frame_%04d.png or frame_####.png "
                                    "(at --fps)"))


@hookimpl
def register_flows(register: Callable[[FlowSpec], None]) -> None:
    register(FlowSpec("dis", dis_flow, "OpenCV's DIS optical flow (medium preset) on the frames' gray"))


@hookimpl
def register_writers(register: Callable[[WriterSpec], None]) -> None:
    register(WriterSpec("mp4", (".mp4",), Mp4Writer, mp4_complete,
                        description="H.264 mp4 (ffmpeg from imageio-ffmpeg), source frame rate and audio",
                        chunks=Chunks(mp4_chunk, mp4_join)))
    register(WriterSpec("frames", (), FramesWriter, lambda target: (target / COMPLETE).is_file(),
                        description="a folder with one PNG per frame (--writer frames)"))
