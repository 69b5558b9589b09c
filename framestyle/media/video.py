"""Video in: OpenCV, streamed (out: :mod:`framestyle.media.encodings`).

OpenCV reads frames one at a time, so a video is never held in memory. Its
frame count and frame rate are the container's claims, checked against the
packets themselves (``packet_timing``): a variable-rate video is encoded at
its average rate so that it keeps its length and its sync with the sound.
The count stays an estimate that the engine corrects as frames arrive, and a
file that ends early is reported with the last good frame, keeping what was
done. Frames are converted from OpenCV's BGR to RGB here, at the boundary.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np

from framestyle.errors import InputError, read_error
from framestyle.media.encodings import exact_fps, ffmpeg_exe, streams
from framestyle.types import SourceInfo

log = logging.getLogger("framestyle")

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv")
# This many failed reads in a row end a video; fewer, followed by a good
# frame, are damaged frames in the middle.
MAX_DAMAGED_RUN = 50
# Containers in which OpenCV's seek lands on the very frame asked for
# (tests/test_video.py checks each): a segment starts there instead of
# decoding every frame before it. In MPEG program and transport streams it
# lands on a later keyframe, so their segments decode from the start.
EXACT_SEEK = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ogv")


def spans(numbers: list[int]) -> str:
    """Zero-based positions as 1-based frame numbers: ``[4, 5, 6]`` -> ``5-7``."""
    first, last = numbers[0] + 1, numbers[-1] + 1
    return str(first) if first == last else f"{first}-{last}"


def probe_audio(path: Path) -> str | None:
    """The codec of the first audio stream of ``path``, or None if it has none."""
    match = re.search(r"Stream #\S+.*?: Audio: (\w+)", streams(path))
    return match.group(1) if match else None


NO_TIMESTAMP = -(2**63)  # FFmpeg's AV_NOPTS_VALUE


def packet_timing(path: Path) -> tuple[int, float] | None:
    """(video packets, seconds from the first frame's start to the last one's
    end), read from the container without decoding; None if ffmpeg cannot.
    A run opens a video several times (its length for the progress, its
    frames, each segment's): the file is read for this once while unchanged."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return scanned_packet_timing(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def scanned_packet_timing(path: Path, size: int, mtime_ns: int) -> tuple[int, float] | None:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "quiet", "-i", str(path),
                             "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
                            capture_output=True, text=True, errors="replace")
    base = re.search(r"^#tb 0: (\d+)/(\d+)$", result.stdout, re.MULTILINE)
    packets = [line.split(",") for line in result.stdout.splitlines() if line.startswith("0,")]
    # Presentation times where every packet has one; else decode times (MPEG
    # program streams leave most presentation times unset), whose span is the
    # same at a constant rate but not where B-frames meet a change of rate.
    try:
        column = 2 if all(int(fields[2]) != NO_TIMESTAMP for fields in packets) else 1
        timed = [(int(fields[column]), int(fields[3])) for fields in packets if int(fields[column]) != NO_TIMESTAMP]
    except (ValueError, IndexError):
        return None
    if not base or len(timed) < 2:
        return None
    first = min(time for time, _ in timed)
    last, duration = max(timed)
    last_duration: float = duration if duration > 0 else (last - first) / (len(timed) - 1)  # none stored: the mean
    return len(packets), (last + last_duration - first) * int(base.group(1)) / int(base.group(2))


def average_timing(claimed_frames: int, nominal_fps: float, path: Path) -> tuple[int, float]:
    """The frame count and rate to trust. OpenCV reports the container's
    nominal rate, and where the container has no frame index (mkv, webm) a
    count estimated from it; for a variable-rate video (phones, screen
    recorders) both are wrong, and encoding at the nominal rate would shorten
    the video against its sound. The packets tell the truth; the nominal rate
    is kept where they agree with it, as it is exact (30000/1001)."""
    timing = packet_timing(path)
    if timing is None or timing[1] <= 0:
        return claimed_frames, nominal_fps
    packets, seconds = timing
    average = packets / seconds
    if nominal_fps <= 0:
        return packets, average
    if claimed_frames and seconds < (claimed_frames - 2) / nominal_fps:
        return claimed_frames, nominal_fps  # packets missing: a file cut short keeps its claim
    return packets, nominal_fps if abs(average - nominal_fps) < 0.005 * nominal_fps else average


def check_readable(path: Path) -> None:
    """OpenCV says only "cannot open" for any failure; name the common ones."""
    try:
        with open(path, "rb") as f:
            if not f.read(1):
                raise InputError("empty file")
    except OSError as exc:
        raise read_error(exc) from None


class VideoSource:
    """Frames of a video file, decoded on demand."""

    def __init__(self, path: Path) -> None:
        import cv2

        check_readable(path)
        # FFmpeg's own complaints about damaged packets would interleave with
        # the progress display; framestyle reports damage itself, one line per gap.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            self.capture.release()
            raise InputError("not a video OpenCV can read")
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rotation = int(self.capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0)
        if rotation in (90, 270):  # OpenCV applies the rotation: frames come upright
            width, height = height, width
        if width <= 0 or height <= 0:
            self.capture.release()
            raise InputError("the video has no readable picture size")
        count, fps = average_timing(count, fps, path)
        self.info = SourceInfo(path, "video", width, height, frame_count=count or None,
                               fps=fps if fps > 0 else None, rotation=rotation)
        self.frames_read = 0

    def frames(self) -> Iterator[np.ndarray]:
        """Frames in order. A frame that fails to decode in the middle of the
        file is replaced by the last good one, so the output keeps the
        source's timing (and its sync with the audio); failures that run to
        the end of the file are its end."""
        import cv2

        previous: np.ndarray | None = None
        missing: list[int] = []  # positions of frames that failed since the last good one
        while len(missing) < MAX_DAMAGED_RUN:
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                missing.append(self.frames_read + len(missing))
                if previous is None and len(missing) >= MAX_DAMAGED_RUN // 5:
                    break  # nothing decodes at all
                continue
            if missing and previous is not None:
                log.warning("%s: frame(s) %s could not be decoded (damaged); the frame before them "
                            "is repeated in their place", self.path, spans(missing))
                for _ in missing:
                    self.frames_read += 1
                    yield previous
            missing = []
            self.frames_read += 1
            previous = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield previous
        expected = self.info.frame_count
        if self.frames_read and expected and self.frames_read < expected - 1:
            log.warning("%s: the video ended after frame %d of the %d its header claims "
                        "(truncated or damaged); the frames read are kept",
                        self.path, self.frames_read, expected)

    def frames_from(self, start: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) from frame ``start`` on, as :meth:`frames` gives
        them: sought where the container lands on the exact frame, else the
        frames before it decoded and dropped."""
        if start > 0 and self.path.suffix.lower() in EXACT_SEEK and self.seek(start):
            return enumerate(self.frames(), start=start)
        return islice(enumerate(self.frames()), start, None)

    def seek(self, index: int) -> bool:
        """Whether the next frame read is frame ``index``; if the seek fails
        (a damaged frame there), the capture is back at the start."""
        import cv2

        if self.capture.set(cv2.CAP_PROP_POS_FRAMES, index) and int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) == index:
            self.frames_read = index
            return True
        self.capture.release()
        self.capture = cv2.VideoCapture(str(self.path))
        return False

    def close(self) -> None:
        self.capture.release()


def read_video_info(path: Path) -> tuple[int, Fraction | None, bool]:
    """(frame count as ffmpeg decodes it, exact frame rate, has audio) of a
    finished video: what a player will see."""
    import cv2

    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                             "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    frames = re.findall(r"frame=\s*(\d+)", result.stderr)
    audio = re.search(r"Stream #\S+.*?: Audio:", result.stderr) is not None
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return int(frames[-1]) if frames else 0, exact_fps(fps) if fps else None, audio
