"""Videos in (OpenCV) and out: an H.264 mp4 with the source's frame rate and
audio, or a folder with one PNG per frame.

Both writers keep each finished frame as a PNG as soon as it is done, so an
interrupted run resumes from the first unfinished frame. The mp4 writer
streams frames into ffmpeg as they come and keeps its PNGs in a hidden work
folder beside the output, removed once the video is complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from framestyle.errors import InputError
from framestyle.hookspecs import hookimpl
from framestyle.media.images import (
    drop_stale_partials,
    partial_path,
    read_image,
    write_image_atomic,
    write_text_atomic,
)
from framestyle.media.video import (
    VIDEO_EXTENSIONS,
    Mp4Encoder,
    VideoSource,
    exact_fps,
    probe_audio,
)
from framestyle.types import LoaderSpec, SourceInfo, WriterSpec

COMPLETE = ".framestyle-complete"
FINGERPRINT = "fingerprint.json"
NOTE = ".note.json"  # notes kept with the frames (a split video's segment plan), gone with them


class FrameStore:
    """Numbered PNG frames in a folder, with the fingerprint of the run that
    made them, so only a run with the same settings and source reuses them.
    Besides the frames (part ``frame``) it keeps, until the output is
    complete, the two results of frames where a split video's segments
    overlap: the earlier segment's (``tail``) and the later one's (``head``),
    from which the written frame is cross-faded."""

    PARTS = ("frame", "tail", "head")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0  # frames written (or kept) so far in this run
        self.reusable = 0

    def path(self, index: int, part: str = "frame") -> Path:
        if part not in self.PARTS:
            raise ValueError(f"unknown part {part!r}")
        return self.folder / f"{part}_{index + 1:06d}.png"

    def resume(self, fingerprint: str, reuse: bool = True) -> int:
        marker = self.folder / FINGERPRINT
        ours = marker.is_file() or (self.folder / COMPLETE).is_file()
        if not ours and any(self.folder.glob("frame_*.png")):
            raise InputError(f"{self.folder} holds frames framestyle did not make; choose another -o")
        if previous_fingerprint(marker) != fingerprint or not reuse:
            self.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, json.dumps(fingerprint))
        while self.path(self.reusable).is_file():
            self.reusable += 1
        return self.reusable

    def clear(self) -> None:
        for part in self.PARTS:
            self.remove(part)
        (self.folder / COMPLETE).unlink(missing_ok=True)

    def remove(self, part: str) -> None:
        for old in self.folder.glob(f"{part}_*.png"):
            old.unlink()

    def finished(self, part: str = "frame") -> set[int]:
        """Indices of the finished frames (or other parts) in the folder."""
        found = set()
        for path in self.folder.glob(f"{part}_*.png"):
            number = path.stem.partition("_")[2]
            if number.isdigit() and int(number) > 0:
                found.add(int(number) - 1)
        return found

    def kept(self, index: int, part: str = "frame") -> np.ndarray:
        return read_image(self.path(index, part))

    def recall(self, name: str) -> str | None:
        try:
            return (self.folder / f"{name}{NOTE}").read_text()
        except OSError:
            return None

    def remember(self, name: str, text: str) -> None:
        write_text_atomic(self.folder / f"{name}{NOTE}", text)

    def keep(self, index: int, frame: np.ndarray, part: str = "frame") -> None:
        write_image_atomic(self.path(index, part), frame)

    def add(self, frame: np.ndarray) -> None:
        """The next frame in order; one kept before (a resumed run's, or one
        finished out of order) is on disk already."""
        if self.count >= self.reusable and not self.path(self.count).is_file():
            write_image_atomic(self.path(self.count), frame)
        self.count += 1


def previous_fingerprint(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):  # none yet, or cut short by a kill: reuse nothing
        return None


class KeepsFrames:
    """The resume half of a writer whose finished frames live in ``store``,
    and the out-of-order half that lets a video be split into segments."""

    store: FrameStore

    def resume(self, fingerprint: str, reuse: bool = True) -> int:
        return self.store.resume(fingerprint, reuse)

    def kept(self, index: int, part: str = "frame") -> np.ndarray:
        return self.store.kept(index, part)

    def keep(self, index: int, frame: np.ndarray, part: str = "frame") -> None:
        self.store.keep(index, frame, part)

    def finished(self, part: str = "frame") -> set[int]:
        return self.store.finished(part)

    def recall(self, name: str) -> str | None:
        """A note kept with the frames (a split video's segment plan), or None."""
        return self.store.recall(name)

    def remember(self, name: str, text: str) -> None:
        self.store.remember(name, text)


class FramesWriter(KeepsFrames):
    """One PNG per frame in the folder ``target``; complete when the marker is there."""

    def __init__(self, target: Path, info: SourceInfo) -> None:
        self.store = FrameStore(target)

    def write(self, frame: np.ndarray) -> None:
        self.store.add(frame)

    def close(self) -> None:
        # Frames past the end (from a longer earlier run) would not belong.
        index = self.store.count
        while self.store.path(index).is_file():
            self.store.path(index).unlink()
            index += 1
        self.store.remove("head")
        self.store.remove("tail")
        (self.store.folder / COMPLETE).write_text(f"{self.store.count} frames\n")
        (self.store.folder / FINGERPRINT).unlink(missing_ok=True)
        for note in self.store.folder.glob(f"*{NOTE}"):
            note.unlink()

    def abort(self) -> None:
        pass  # finished frames stay for the next run to reuse


class Mp4Writer(KeepsFrames):
    """H.264 mp4 at the source's exact frame rate with its audio track."""

    def __init__(self, target: Path, info: SourceInfo) -> None:
        self.target = target
        self.info = info
        self.store = FrameStore(work_folder(target))
        self.partial = partial_path(target)
        self.encoder: Mp4Encoder | None = None

    def write(self, frame: np.ndarray) -> None:
        self.store.add(frame)
        if self.encoder is None:
            height, width = frame.shape[:2]
            audio = probe_audio(self.info.path) if self.info.kind == "video" else None
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.encoder = Mp4Encoder(self.partial, width, height, exact_fps(self.info.fps or 25.0),
                                      self.info.path if audio else None, audio)
        self.encoder.write(frame)

    def close(self) -> None:
        if self.encoder is None:
            raise ValueError(f"{self.target}: no frame was written")
        self.encoder.close()
        self.partial.replace(self.target)  # complete from here on; the frames are no longer needed
        drop_stale_partials(self.target)
        shutil.rmtree(self.store.folder, ignore_errors=True)

    def abort(self) -> None:
        if self.encoder is not None:
            self.encoder.abort()  # the PNGs stay: a rerun resumes from them


def work_folder(target: Path) -> Path:
    return target.with_name(f".{target.name}.framestyle-work")


def mp4_complete(target: Path) -> bool:
    """Written only by renaming a finished file, so presence means complete;
    the header check catches a file that something else cut short. The frames
    of a run killed between that rename and their removal go now."""
    try:
        with open(target, "rb") as f:
            complete = f.read(12)[4:8] == b"ftyp" and target.stat().st_size > 1024
    except OSError:
        return False
    if complete and work_folder(target).is_dir():
        shutil.rmtree(work_folder(target), ignore_errors=True)
    return complete


@hookimpl
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    register(LoaderSpec("video", VIDEO_EXTENSIONS, VideoSource, kind="video",
                        description="video files via OpenCV, streamed frame by frame"))


@hookimpl
def register_writers(register: Callable[[WriterSpec], None]) -> None:
    register(WriterSpec("mp4", (".mp4",), Mp4Writer, mp4_complete,
                        description="H.264 mp4 (ffmpeg from imageio-ffmpeg), source frame rate and audio"))
    register(WriterSpec("frames", (), FramesWriter, lambda target: (target / COMPLETE).is_file(),
                        description="a folder with one PNG per frame (--writer frames)"))
