"""Video in (OpenCV, streamed) and out (the ffmpeg binary that imageio-ffmpeg ships).

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
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np

from framestyle.errors import InputError, read_error
from framestyle.types import SourceInfo

log = logging.getLogger("framestyle")

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv")
# Audio codecs an mp4 can carry as they are; others are re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
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


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def exact_fps(fps: float) -> Fraction:
    """The rational frame rate behind OpenCV's float (29.97002997 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def probe_audio(path: Path) -> str | None:
    """The codec of the first audio stream of ``path``, or None if it has none."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True, errors="replace")
    match = re.search(r"Stream #\S+.*?: Audio: (\w+)", result.stderr)
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


def die_with_parent() -> None:
    """Run in the encoder's process before ffmpeg starts (Linux): it is
    killed when framestyle dies, even by SIGKILL, so an orphaned encoder never
    goes on writing the partial file that a rerun is writing again."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: without it an orphan only finishes a file that is discarded
        pass


# x264 at CRF 18, yuv420p (what every player plays), tuned for fidelity:
# its psycho-visual options (psy-rd, adaptive quantisation) spend bits on
# noise-like detail that differs from frame to frame, which on stylised
# frames added 10-16% to E_warp and 4-5 points to the objective of the frames
# as decoded (docs/guide/videos.md: the encoder).
H264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-tune", "psnr", "-pix_fmt", "yuv420p"]


def sound(audio_from: Path | None, audio_codec: str | None, window: tuple[float, float] | None = None) -> list[str]:
    """FFmpeg's arguments that take the picture from the first input and the
    sound of ``audio_from`` as the second: copied where mp4 holds its codec,
    else as AAC; with a ``window`` (start, duration in seconds), that part of
    it. No -shortest: it can drop the last picture when the sound ends a few
    milliseconds before it, and every frame must be kept."""
    if audio_from is None or audio_codec is None:
        return []
    part = ["-ss", f"{window[0]:.6f}", "-t", f"{window[1]:.6f}"] if window is not None else []
    return [*part, "-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0",
            "-c:a", "copy" if audio_codec in MP4_AUDIO else "aac"]


class Mp4Encoder:
    """Streams RGB frames into ffmpeg: H.264, yuv420p, the source's exact
    frame rate and its audio. Writes ``partial`` only; the caller renames."""

    def __init__(self, partial: Path, width: int, height: int, fps: Fraction,
                 audio_from: Path | None, audio_codec: str | None,
                 audio_window: tuple[float, float] | None = None) -> None:
        self.width, self.height = width + width % 2, height + height % 2  # yuv420p needs even sizes
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "-",
        ]
        command += sound(audio_from, audio_codec, audio_window)
        command += [*H264, "-r", f"{fps.numerator}/{fps.denominator}", "-movflags", "+faststart",
                    "-f", "mp4", str(partial)]
        self.partial = partial
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                        preexec_fn=die_with_parent if sys.platform == "linux" else None)

    def write(self, rgb: np.ndarray) -> None:
        pad_y, pad_x = self.height - rgb.shape[0], self.width - rgb.shape[1]
        if pad_y or pad_x:  # repeat the last row/column rather than add a black line
            rgb = np.pad(rgb, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(np.ascontiguousarray(rgb).tobytes())
        except BrokenPipeError:
            raise OSError(f"ffmpeg stopped: {self._stderr()}") from None

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise OSError(f"ffmpeg failed: {self._stderr()}")

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.partial.unlink(missing_ok=True)

    def _stderr(self) -> str:
        assert self.process.stderr is not None
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        lines = self.process.stderr.read().decode(errors="replace").strip().splitlines()
        return first_cause(lines) or f"exit code {self.process.returncode}"


def join_mp4(chunks: Sequence[Path], partial: Path, audio_from: Path | None, audio_codec: str | None,
             audio_window: tuple[float, float] | None = None) -> None:
    """``chunks`` (mp4s of the same encoding, the picture only) one after
    the other into ``partial``, the picture copied, not encoded again
    (FFmpeg's concat demuxer), with ``audio_from``'s sound as
    :class:`Mp4Encoder` muxes it."""
    listing = partial.with_name(partial.name + ".txt")
    listing.write_text("".join(concat_line(chunk) for chunk in chunks))
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
               "-i", str(listing)]
    command += sound(audio_from, audio_codec, audio_window)
    command += ["-c:v", "copy", "-movflags", "+faststart", "-f", "mp4", str(partial)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace")
    finally:
        listing.unlink(missing_ok=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise OSError(f"ffmpeg failed: {first_cause(done.stderr.strip().splitlines()) or done.returncode}")


def concat_line(path: Path) -> str:
    """A line of the concat demuxer's list: the path quoted, its own quotes escaped."""
    quoted = str(path.resolve()).replace("'", "'\\''")
    return f"file '{quoted}'\n"


def first_cause(lines: list[str]) -> str:
    """The line of ffmpeg's error output that says why: the first naming an
    OS error (disk full, permission), else the last line."""
    for line in lines:
        if match := re.search(r": (No space left on device|Permission denied|Input/output error|"
                              r"Disk quota exceeded|Read-only file system)", line):
            return match.group(1)
    return re.sub(r"^\[[^]]*\] ", "", lines[-1]) if lines else ""


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
