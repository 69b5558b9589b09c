"""Videos in (OpenCV, or numbered image files) and out: a video file in
each of the formats of :data:`~framestyle.media.encodings.FORMATS` (H.264
or HEVC mp4, ProRes 4444 mov, VP9 webm) with the source's frame rate and
sound, or a folder with one PNG per frame. The engine keeps finished frames
for resuming and splitting (:mod:`framestyle.engine.frame_store`): these
writers only write, frame by frame, in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from framestyle.errors import InputError
from framestyle.hookspecs import hookimpl
from framestyle.media.encodings import (
    FORMATS,
    Encoding,
    VideoEncoder,
    VideoFormat,
    alpha_input,
    encoder_problem,
    exact_fps,
    is_finished,
    join_videos,
)
from framestyle.media.images import (
    deep_images,
    drop_stale_partials,
    partial_path,
    write_image_atomic,
)
from framestyle.media.motion import dis_flow
from framestyle.media.sequence import SequenceSource, is_sequence, numbered, numbered_files
from framestyle.media.video import VIDEO_EXTENSIONS, VideoSource, probe_audio
from framestyle.settings import Settings
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


class SequenceWriter:
    """Numbered image files, one per frame (``-o out/%05d.png``, or
    ``#####``), numbered as the source's frames are (a sequence's own
    numbers, else from 1); complete once the marker beside them is there."""

    def __init__(self, target: Path, info: SourceInfo) -> None:
        self.pattern = target
        self.complete_marker, self.writing_marker = sequence_markers(target)
        ours = self.complete_marker.is_file() or self.writing_marker.is_file()
        if not ours and target.parent.is_dir() and numbered_files(target):
            raise InputError(f"{target}: files of that pattern are there that framestyle did not make; "
                             "choose another -o")
        self.first = first_number(info)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        if self.count == 0:
            self.pattern.parent.mkdir(parents=True, exist_ok=True)
            self.complete_marker.unlink(missing_ok=True)
            self.writing_marker.touch()
        write_image_atomic(numbered(self.pattern, self.first + self.count), frame)
        self.count += 1

    def close(self) -> None:
        if self.count == 0:
            raise ValueError(f"{self.pattern}: no frame was written")
        for number, stale in numbered_files(self.pattern):  # from an earlier, longer run: not this video's
            if not self.first <= number < self.first + self.count:
                stale.unlink()
        self.complete_marker.write_text(f"{self.count} frames from {self.first}\n")
        self.writing_marker.unlink(missing_ok=True)

    def abort(self) -> None:
        pass  # the frames written stay until a rerun writes them again


def sequence_markers(pattern: Path) -> tuple[Path, Path]:
    """The files beside a sequence that say it is complete, or being written."""
    return (pattern.with_name(f".{pattern.name}{COMPLETE}"), pattern.with_name(f".{pattern.name}{WRITING}"))


def first_number(info: SourceInfo) -> int:
    """The number of the first frame written: a sequence's own (from ``--start`` on), else 1."""
    if not is_sequence(info.path) or not (files := numbered_files(info.path)):
        return 1
    skipped = round(info.window[0] * info.fps) if info.window and info.fps else 0
    return files[0][0] + skipped


class VideoWriter:
    """A video file in one of the :data:`FORMATS`, at the source's exact
    frame rate with its sound (without, for a chunk that is joined later)
    and, where the format holds one, its alpha; streamed into ffmpeg under a
    partial name and renamed when complete."""

    def __init__(self, fmt: VideoFormat, target: Path, info: SourceInfo, crf: int | None = None,
                 sound: bool = True) -> None:
        self.fmt, self.target, self.info, self.crf, self.sound = fmt, target, info, crf, sound
        self.partial = partial_path(target)
        self.encoder: VideoEncoder | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.encoder is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.encoder = VideoEncoder(self.partial, self.encoding(*frame.shape[1::-1]))
        self.encoder.write(frame)

    def encoding(self, width: int, height: int) -> Encoding:
        video = self.info.kind == "video"
        audio = probe_audio(self.info.path) if self.sound and video else None
        alpha = alpha_input(self.info) if video and self.fmt.alpha_pixels else None
        return Encoding(self.fmt, width, height, exact_fps(self.info.fps or 25.0), self.crf, alpha,
                        self.info.path if audio else None, audio, self.info.window)

    def close(self) -> None:
        if self.encoder is None:
            raise ValueError(f"{self.target}: no frame was written")
        self.encoder.close()
        self.partial.replace(self.target)  # complete from here on
        drop_stale_partials(self.target)

    def abort(self) -> None:
        if self.encoder is not None:
            self.encoder.abort()


def video_chunk(fmt: VideoFormat, target: Path, info: SourceInfo, crf: int | None = None) -> VideoWriter:
    """One chunk of a split video, the picture only; ``info.window`` is the
    part of the source it holds (where its alpha is read)."""
    return VideoWriter(fmt, target, info, crf, sound=False)


def video_join(fmt: VideoFormat, chunks: Sequence[Path], target: Path, info: SourceInfo) -> None:
    """The chunks joined by stream copy, with the source's sound, renamed into place when complete."""
    partial = partial_path(target)
    audio = probe_audio(info.path)
    join_videos(fmt, chunks, partial, info.path if audio else None, audio, info.window)
    partial.replace(target)
    drop_stale_partials(target)


def writer_check(fmt: VideoFormat) -> Callable[[Settings], str | None]:
    def check(settings: Settings) -> str | None:
        if settings.bit_depth != 8:
            return f"--bit-depth {settings.bit_depth}: the {fmt.name} writer writes 8-bit video; write 16-bit " \
                   "PNG or TIFF frames (-o out/%05d.png, or --writer frames)"
        return fmt.crf_problem(settings.crf) or encoder_problem(fmt)

    return check


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
    for fmt in FORMATS:
        register(WriterSpec(fmt.name, fmt.extensions, functools.partial(VideoWriter, fmt),
                            functools.partial(is_finished, fmt), fmt.priority, fmt.description,
                            Chunks(functools.partial(video_chunk, fmt), functools.partial(video_join, fmt)),
                            options=("crf",) if fmt.crf else (), check=writer_check(fmt)))
    register(WriterSpec("sequence", (), SequenceWriter, lambda target: sequence_markers(target)[0].is_file(),
                        description="numbered image files, one per frame: -o out/%05d.png or out/#####.png",
                        check=deep_images))
    register(WriterSpec("frames", (), FramesWriter, lambda target: (target / COMPLETE).is_file(),
                        description="a folder with one PNG per frame (--writer frames)"))
