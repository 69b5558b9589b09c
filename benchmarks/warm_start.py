"""Where a warm video frame starts, compared in one run on the same clip.

    .venv/bin/python benchmarks/warm_start.py VIDEO STYLE [--frames 12] [--start 0] [--size 256]
    .venv/bin/python benchmarks/warm_start.py --pan PHOTO STYLE     # a camera pan over a photo

``warped``: the default, the previous result warped by the flow everywhere.
``blend``: what framestyle did before, the warped result where the
consistency mask trusts the flow and the raw frame elsewhere (an
``init_image`` plugin). Each line gives the warm frames' mean iterations and
seconds, mean E_warp (Lai et al., from the run report) and the mean content +
style loss the warm frames ended at. ``--pan`` makes a 16-frame clip of a
slow pan and zoom over a real photo (new pixels enter at one edge).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import framestyle
from framestyle.bench import cpu_kind
from framestyle.builtin.losses import warped_previous
from framestyle.host import PluginHost
from framestyle.media.encodings import FORMATS, Encoding, VideoEncoder, ffmpeg_exe
from framestyle.media.images import read_image, resize


class BlendStart:
    @framestyle.hookimpl
    def init_image(self, job):  # type: ignore[no-untyped-def]
        if not job.warm:
            return None
        warped, mask = warped_previous(job)
        return mask * warped + (1 - mask) * job.content


def pan_clip(photo: Path, path: Path, frames: int = 16) -> None:
    """A 256x160 view moving 6 px right and 2 px down a frame while zooming in 1% a frame."""
    image = read_image(photo)
    width = image.shape[1]
    encoder = VideoEncoder(path, Encoding(FORMATS[0], 256, 160, Fraction(25)))
    for i in range(frames):
        w = int(width * 0.7 / (1 + 0.01 * i))
        h = w * 160 // 256
        x, y = 20 + 6 * i, 10 + 2 * i
        encoder.write(resize(image[y:y + h, x:x + w], 256, 160))
    encoder.close()


def cut(video: Path, path: Path, start: float, frames: int) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", str(start), "-i", str(video), "-frames:v", str(frames),
                    "-c:v", "libx264", "-crf", "12", "-an", str(path)], check=True)


def measure(clip: Path, style: Path, output: Path, size: int, plugin: object | None) -> str:
    host = PluginHost()
    if plugin is not None:
        host.register(plugin, "blend-start")
    framestyle.run(clip, style, output, size=size, verbosity=-1, host=host, overwrite=True)
    report = json.loads(output.with_name(output.name + ".report.json").read_text())
    warm = [frame for frame in report["frames"] if frame["warm"]]
    iterations = statistics.fmean(frame["iterations"] for frame in warm)
    seconds = statistics.fmean(frame["seconds"] for frame in warm)
    ended = statistics.fmean(sum(v for k, v in frame["losses"].items() if k != "temporal") for frame in warm)
    return (f"{len(warm)} warm frames: {iterations:.1f} iterations, {seconds:.2f} s each, "
            f"E_warp {report['summary']['warp_error_mean']:.3e}, content+style {ended:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, help="a video, or with --pan a photo")
    parser.add_argument("style", type=Path)
    parser.add_argument("--pan", action="store_true", help="VIDEO is a photo: pan over it")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--start", type=float, default=0.0, help="seconds into the video")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="warm-start-"))
    clip = folder / "clip.mp4"
    if args.pan:
        pan_clip(args.video, folder / "pan.mp4")
        cut(folder / "pan.mp4", clip, 0, args.frames)
    else:
        cut(args.video, clip, args.start, args.frames)
    print(f"{args.video.name} + {args.style.name}, {args.frames} frames at {args.size} px, {cpu_kind()}")
    for name, plugin in (("warped", None), ("blend", BlendStart())):
        print(f"{name:>7}: {measure(clip, args.style, folder / f'{name}.mp4', args.size, plugin)}", flush=True)


if __name__ == "__main__":
    main()
