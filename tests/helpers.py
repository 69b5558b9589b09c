"""Small helpers for tests: bundled sample images at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# Tests of plumbing (resume, kills, executors, batches, segments) stylise
# through VGG-19's first two blocks only: the real weights and the whole
# pipeline at a sixth of an iteration's cost on 2 cores (~8 ms against
# ~50 ms at 48×32, where the deep layers' weights dominate), and without the
# margin around the canvas (8 pixels would double a 48×32 image's pixels).
# Tests of what an image looks like keep the default layers and margin.
SHALLOW = {"content_layer": "relu2_1", "style_layers": {"relu1_1": 1.0, "relu2_1": 1.0}, "margin": 0}
SHALLOW_ARGS = ["--content-layer", SHALLOW["content_layer"], "--style-layers", ",".join(SHALLOW["style_layers"]),
                "--margin", "0"]


def sample(name: str, size: int) -> np.ndarray:
    """A bundled sample image resized so its long side is ``size``."""
    path = next(SAMPLES.rglob(name))
    image = Image.open(path).convert("RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image)


def outputs(folder: Path) -> list[str]:
    """Files under ``folder`` (relative, sorted), leaving out the records every
    run writes beside its outputs (framestyle-run.toml/.json, the report)."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "framestyle-run." not in p.name and "framestyle-report." not in p.name)


def step_losses(content: np.ndarray, style: np.ndarray, **options: object) -> list[float]:
    """The loss after each iteration of ``framestyle.stylize(content, style, **options)``."""
    import framestyle
    from framestyle.host import PluginHost

    losses: list[float] = []

    class Recorder:
        @framestyle.hookimpl
        def on_step(self, event):
            losses.append(event.loss)

    host = PluginHost(autoload=False)
    host.register(Recorder(), "recorder")
    framestyle.stylize(content, style, host=host, **options)
    return losses


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def make_video(path: Path, frames: int = 6, width: int = 48, height: int = 32, fps: str = "30000/1001",
               audio: bool = True, cut_at: int | None = None, codec: str = "libx264") -> Path:
    """A small video made with ffmpeg: a textured background panning right
    and a bright square moving across it; from ``cut_at`` on, a different
    scene (a new shot); a 440 Hz tone as its audio track."""
    import subprocess

    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    texture = (rng.random((height // 4, width // 4 + frames, 3)) * 255).astype(np.uint8)
    background = np.asarray(Image.fromarray(texture).resize(((width // 4 + frames) * 4, height), Image.BICUBIC))
    other = np.asarray(Image.fromarray(texture[::-1, ::-1, ::-1].copy()).resize(
        ((width // 4 + frames) * 4, height), Image.NEAREST))
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", fps, "-i", "-"]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-shortest", "-c:a", "aac"]
    quality = ["-crf", "10", "-pix_fmt", "yuv420p"] if codec == "libx264" else ["-q:v", "2"]
    command += ["-c:v", codec, *quality, str(path)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    for t in range(frames):
        scene = other if cut_at is not None and t >= cut_at else background
        frame = scene[:, 2 * t: 2 * t + width].copy()
        frame[6 + t: 14 + t, 6 + 2 * t: 14 + 2 * t] = [250, 240, 40]
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    assert process.wait() == 0
    return path


def make_vfr_video(path: Path, audio_codec: str = "pcm_s16le") -> Path:
    """A variable-frame-rate 47x31 video, as phones and screen recorders make:
    6 frames at 15 fps then 6 at 30 fps (0.6 s, on average 20 fps), with 0.6 s
    of sound; the container (``path``'s extension) decides how the timing is stored."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", "testsrc=size=47x31:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=0.6", "-frames:v", "12",
                    "-vf", "setpts='if(lt(N,6),2*N,N+6)/30/TB'", "-fps_mode", "vfr",
                    "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", audio_codec, str(path)], check=True)
    return path


def stream_seconds(path: Path, stream: str) -> float:
    """How long the first video ("v") or audio ("a") stream of ``path`` plays,
    as ffmpeg decodes it."""
    import re
    import subprocess

    import imageio_ffmpeg

    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path),
                             "-map", f"0:{stream}:0", "-f", "null", "-"], capture_output=True, text=True)
    hours, minutes, seconds = re.findall(r"time=(\d+):(\d+):([\d.]+)", result.stderr)[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file as framestyle's loader reads it (HxWx3 uint8 RGB)."""
    from framestyle.media.video import VideoSource

    source = VideoSource(path)
    try:
        return list(source.frames())
    finally:
        source.close()
