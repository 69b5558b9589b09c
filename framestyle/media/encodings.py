"""Videos out: one table of the formats framestyle writes, and the ffmpeg
(the one imageio-ffmpeg ships) that streams frames into them.

A format is a row of :data:`FORMATS`, not a class: its codec's options, the
pixel format with and without transparency, the quality scale ``--crf``
moves on, and which sound codecs its container holds as they are. Where the
source has an alpha channel and the format can carry one (ProRes 4444, VP9),
ffmpeg reads the source's alpha itself and lays it back on the stylised
picture (``mergeplanes``): framestyle optimises RGB only.
"""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from framestyle.types import SourceInfo

# Codecs an mp4 or mov holds as they are; others are re-encoded.
MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})


@dataclass(frozen=True)
class VideoFormat:
    """How one kind of video file is written."""

    name: str  # the writer's name (--writer)
    extensions: tuple[str, ...]  # the first is what an output is named with
    description: str
    muxer: str  # ffmpeg's -f
    encoder: str  # ffmpeg's -c:v
    options: tuple[str, ...]  # the encoder's own options
    pixels: str  # -pix_fmt
    alpha_pixels: str | None = None  # -pix_fmt with the source's alpha kept; None: the format has none
    crf: tuple[int, int, int] | None = None  # (default, best, worst); None: no --crf
    audio_kept: frozenset[str] = MP4_AUDIO  # sound codecs copied as they are
    audio_encoder: str = "aac"  # the others are encoded with this
    flags: tuple[str, ...] = ("-movflags", "+faststart")  # the muxer's
    even: bool = True  # 4:2:0 colour needs even sizes
    priority: int = 0  # among writers of the same extension
    magic: tuple[int, bytes] = (4, b"ftyp")  # (offset, bytes) a finished file starts with

    def quality(self, crf: int | None) -> list[str]:
        if self.crf is None:
            return []
        return ["-crf", str(self.crf[0] if crf is None else crf)]

    def crf_problem(self, crf: int | None) -> str | None:
        """What is wrong with ``--crf`` for this format, if anything."""
        if crf is None:
            return None
        if self.crf is None:
            return f"--crf: the {self.name} writer ({self.description}) has no --crf; it is for " \
                   f"{', '.join(f.name for f in FORMATS if f.crf)}"
        _, best, worst = self.crf
        if not best <= crf <= worst:
            return f"--crf {crf}: the {self.name} writer takes {best} (best) to {worst}"
        return None


FORMATS = (
    # x264 at CRF 18, yuv420p (what every player plays), tuned for fidelity:
    # its psycho-visual options (psy-rd, adaptive quantisation) spend bits on
    # noise-like detail that differs from frame to frame, which on stylised
    # frames added 10-16% to E_warp and 4-5 points to the objective of the
    # frames as decoded (docs/performance/video-quality.md).
    VideoFormat("mp4", (".mp4", ".m4v"), "H.264 mp4, what every player plays", "mp4", "libx264",
                ("-preset", "medium", "-tune", "psnr"), "yuv420p", crf=(18, 0, 51)),
    # The same reasoning for x265; hvc1 is the tag Apple's players need.
    VideoFormat("hevc", (".mp4", ".mkv"), "HEVC (H.265) mp4, about half H.264's size at the same "
                "quality (--writer hevc)", "mp4", "libx265",
                ("-preset", "medium", "-tune", "psnr", "-tag:v", "hvc1", "-x265-params", "log-level=error"),
                "yuv420p", crf=(20, 0, 51), priority=-1),
    VideoFormat("prores", (".mov",), "ProRes 4444 mov, for editing and compositing: 10-bit 4:4:4, the "
                "source's alpha kept", "mov", "prores_ks", ("-profile:v", "4444", "-vendor", "apl0"),
                "yuv444p10le", alpha_pixels="yuva444p10le",
                audio_kept=MP4_AUDIO | {"pcm_s16le", "pcm_s24le"}, audio_encoder="pcm_s16le", even=False),
    VideoFormat("webm", (".webm",), "VP9 webm, for the web: the source's alpha kept", "webm", "libvpx-vp9",
                ("-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1"), "yuv420p",
                alpha_pixels="yuva420p", crf=(24, 0, 63), audio_kept=frozenset({"opus", "vorbis"}),
                audio_encoder="libopus", flags=(), magic=(0, b"\x1a\x45\xdf\xa3")),
)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True,
                             errors="replace").stdout
    return frozenset(re.findall(r"^ [VAS][A-Z.]{5} (\S+)", listing, re.MULTILINE))


def encoder_problem(fmt: VideoFormat) -> str | None:
    """Why the bundled ffmpeg cannot write ``fmt``, if it cannot."""
    if fmt.encoder in ffmpeg_encoders():
        return None
    return f"the {fmt.name} writer needs ffmpeg's {fmt.encoder} encoder, which the ffmpeg of imageio-ffmpeg " \
           f"({ffmpeg_exe()}) lacks; choose another --video-format"


def is_finished(fmt: VideoFormat, target: Path) -> bool:
    """Written only by renaming a finished file, so presence means complete;
    the header check catches a file that something else cut short."""
    offset, magic = fmt.magic
    try:
        with open(target, "rb") as f:
            return f.read(offset + len(magic))[offset:] == magic and target.stat().st_size > 1024
    except OSError:
        return False


def streams(path: Path) -> str:
    """What ffmpeg says of the streams of ``path`` (its ``-i`` report):
    read once while the file is unchanged, though an output asks it for its
    sound and its alpha, and each chunk of a split video again; "" for a
    path that is not a file."""
    try:
        stat = path.stat()
    except OSError:
        return ""
    return probed_streams(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def probed_streams(path: Path, size: int, mtime_ns: int) -> str:
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          errors="replace").stderr


def pixel_format(path: Path) -> str | None:
    """The pixel format of the first video stream, as ffmpeg names it (``yuva444p10le``)."""
    match = re.search(r"Stream #\S+.*?: Video: [^,]+(?:\([^)]*\))?[^,]*, (\w+)", streams(path))
    return match.group(1) if match else None


def has_alpha(pixels: str | None) -> bool:
    return pixels is not None and re.match(r"(yuva|gbrap|ya\d|rgba|bgra|argb|abgr|rgb32|pal8)", pixels) is not None


def alpha_input(info: SourceInfo) -> list[str] | None:
    """ffmpeg's arguments that open the source's frames again, for their
    alpha channel (``info.window``'s part of them); None where they have none."""
    from framestyle.media.sequence import is_sequence, printf_pattern

    window = ["-ss", f"{info.window[0]:.6f}", "-t", f"{info.window[1]:.6f}"] if info.window else []
    if is_sequence(info.path):
        pattern, first = printf_pattern(info.path)
        if not has_alpha(pixel_format(pattern.with_name(pattern.name % first))):
            return None
        fps = exact_fps(info.fps or 24.0)
        return ["-framerate", f"{fps.numerator}/{fps.denominator}", "-start_number", str(first), *window,
                "-i", str(pattern)]
    if not has_alpha(pixel_format(info.path)):
        return None
    return [*window, "-i", str(info.path)]


def exact_fps(fps: float) -> Fraction:
    """The rational frame rate behind OpenCV's float (29.97002997 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def sound(fmt: VideoFormat, audio_from: Path | None, audio_codec: str | None,
          window: tuple[float, float] | None, index: int) -> tuple[list[str], list[str]]:
    """(the input, the mapping and codec): the sound of ``audio_from`` as
    ffmpeg's input ``index``, copied where the container holds its codec;
    with a ``window`` (start, duration in seconds), that part of it. No
    -shortest: it can drop the last picture when the sound ends a few
    milliseconds before it, and every frame must be kept."""
    if audio_from is None or audio_codec is None:
        return [], []
    part = ["-ss", f"{window[0]:.6f}", "-t", f"{window[1]:.6f}"] if window is not None else []
    codec = "copy" if audio_codec in fmt.audio_kept else fmt.audio_encoder
    return [*part, "-i", str(audio_from)], ["-map", f"{index}:a:0", "-c:a", codec]


def die_with_parent() -> None:
    """Run in the encoder's process before ffmpeg starts (Linux): it is
    killed when framestyle dies, even by SIGKILL, so an orphaned encoder never
    goes on writing the partial file that a rerun is writing again."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: without it an orphan only finishes a file that is discarded
        pass


@dataclass(frozen=True)
class Encoding:
    """What one output is: its format and size, rate, quality, alpha and sound."""

    fmt: VideoFormat
    width: int
    height: int
    fps: Fraction
    crf: int | None = None
    alpha: list[str] | None = None  # alpha_input's arguments
    audio_from: Path | None = None
    audio_codec: str | None = None
    audio_window: tuple[float, float] | None = None

    def command(self, partial: Path) -> list[str]:
        """ffmpeg reading raw RGB on its standard input and writing ``partial``."""
        fmt, rate = self.fmt, f"{self.fps.numerator}/{self.fps.denominator}"
        inputs = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}", "-framerate", rate,
                  "-i", "-"]
        picture, pixels = ["-map", "0:v:0"], fmt.pixels
        if self.alpha and fmt.alpha_pixels:
            inputs += self.alpha
            pixels = fmt.alpha_pixels
            # The picture's planes and the source's alpha plane, both from
            # their first frame, in the output's pixel format: the alpha is
            # converted as a plain re-encoding of the source would convert it
            # (alphamerge would take it through 8 bits).
            each = f"format={pixels},setsar=1,setpts=PTS-STARTPTS"
            planes = ":".join(f"map{n}s={n // 3}:map{n}p={n}" for n in range(4))
            picture = ["-filter_complex", f"[1:v:0]scale={self.width}:{self.height}:flags=area,{each}[a];"
                       f"[0:v]{each}[v];[v][a]mergeplanes={planes}:format={pixels}[out]", "-map", "[out]"]
        audio_input, audio_map = sound(fmt, self.audio_from, self.audio_codec, self.audio_window,
                                       inputs.count("-i"))
        return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *inputs, *audio_input, *picture,
                *audio_map, "-c:v", fmt.encoder, *fmt.options, *fmt.quality(self.crf), "-pix_fmt", pixels,
                "-r", rate, *fmt.flags, "-f", fmt.muxer, str(partial)]


class VideoEncoder:
    """Streams RGB frames into ffmpeg as ``encoding`` says. Writes
    ``partial`` only; the caller renames."""

    def __init__(self, partial: Path, encoding: Encoding) -> None:
        even = encoding.fmt.even
        self.width = encoding.width + encoding.width % 2 * even
        self.height = encoding.height + encoding.height % 2 * even
        encoding = replace(encoding, width=self.width, height=self.height)
        self.partial = partial
        self.process = subprocess.Popen(encoding.command(partial), stdin=subprocess.PIPE, stderr=subprocess.PIPE,
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


def join_videos(fmt: VideoFormat, chunks: Sequence[Path], partial: Path, audio_from: Path | None,
                audio_codec: str | None, audio_window: tuple[float, float] | None = None) -> None:
    """``chunks`` (files of one encoding, the picture only) one after the
    other into ``partial``, the picture copied, not encoded again (FFmpeg's
    concat demuxer), with ``audio_from``'s sound as :class:`VideoEncoder`
    muxes it."""
    listing = partial.with_name(partial.name + ".txt")
    listing.write_text("".join(concat_line(chunk) for chunk in chunks))
    audio_input, audio_map = sound(fmt, audio_from, audio_codec, audio_window, 1)
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
               "-i", str(listing), *audio_input, "-map", "0:v:0", *audio_map, "-c:v", "copy", *fmt.flags,
               "-f", fmt.muxer, str(partial)]
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
