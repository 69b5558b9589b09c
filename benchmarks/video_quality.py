"""Sharp *and* steady: one measure of a stylised video that blur cannot game.

    .venv/bin/python benchmarks/video_quality.py CLIP[@FIRST] [CLIP[@FIRST] …] --style STYLE
        [--frames 16] [--size 192] [--option NAME=VALUE …] [--strip DIR] [--json OUT.json]

Each CLIP (from frame FIRST, ``--frames`` frames) is cut to a lossless-looking
H.264 clip, stylised by framestyle with its defaults (plus ``--option``s),
and stylised again frame by frame, each frame alone (``--no-warm-start
--temporal-weight 0``, the *independent* frames, cached in
``benchmarks/.cache``). Both are decoded from the files written, so both went
through the same encoder. Per frame t, on the frames as decoded:

- **E_warp** (Lai et al. 2018): the mean squared difference, where the flow is
  reliable, between frame t and frame t-1 warped to it by the flow of the
  source frames (framestyle's own flow, mask and cut detection). Pairs across
  a detected cut are left out and counted. The **floor** is the source
  video's own E_warp, on the same pairs. In brackets, ours/floor again with
  a bicubic warp: a bilinear warp blurs, so it charges a sharp frame (fine
  brushwork) more than the smoother source, and a blurred frame less. And
  ours/floor on the frames before the encoder (the run's report): encoding
  adds to either, mostly through yuv420p's half-resolution colour (docs/performance/video-quality.md).
- **fidelity**: the frame's objective (content + 5·style, as framestyle
  minimises it, in float32: :func:`quality_race.objective`) against its own
  source frame, both mirrored out by ``SCORED_MARGIN`` so the edges count as
  the inside does, divided by the independent frame's. 1.0: as well stylised
  as a frame optimised alone; a blurred frame scores far above 1.
- **lag**: the frame is closer in content (``relu4_2``) to the previous
  source frame than to its own; beside it, the same test on the frames as
  framestyle wrote them (its report, in the run's precision): between two
  close source frames the margin is well under 1% of the distance, so the
  encoder (or bf16) alone can turn one answer into the other.

Printed per clip: floor, ours, independent (E_warp means over the kept
pairs), ours/floor, fidelity's median, last frame (how far it drifted along
the shot), worst and cold frames' mean, lagging frames out of those after
the first (the independent frames' count beside it: the test's own noise),
median iterations and seconds per warm frame (from the run's report).
``--table JSON…`` prints saved results again without running anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from quality_race import objective

import framestyle
from framestyle.bench import cpu_kind
from framestyle.media.encodings import FORMATS, ffmpeg_exe
from framestyle.media.images import read_image, resize
from framestyle.media.motion import estimate, warp_error
from framestyle.settings import Settings

CACHE = Path(__file__).resolve().parent / ".cache"
INDEPENDENT = {"warm_start": False, "temporal_weight": 0.0}
WARM_ONLY = {"warm_from"}  # a setting that only warm frames read
# Frames are scored mirrored out this far, edges counted as inside: scored
# as written, VGG-19's zero padding favours the line that a run without a
# margin leaves along them (quality_race.objective).
SCORED_MARGIN = Settings().margin


@dataclass
class FrameQuality:
    index: int
    cut: bool  # starts a new shot (or is the first frame): no pair with the previous frame
    warm: bool
    floor: float | None  # the source's own E_warp against the previous frame
    ours: float | None
    independent: float | None
    floor_cubic: float | None  # the same three with a bicubic warp, which blurs less
    ours_cubic: float | None
    independent_cubic: float | None
    written: float | None  # ours on the frames framestyle wrote, before the encoder (its report)
    written_floor: float | None  # the source's own there, from the same report
    fidelity: float
    lag: bool | None
    independent_lag: bool | None
    iterations: int
    seconds: float
    written_lag: bool | None = None  # lag of the frame as framestyle wrote it, before the encoder (its report)


@dataclass
class ClipQuality:
    clip: str
    style: str
    size: int
    frames: list[FrameQuality] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | str]:
        pairs = [f for f in self.frames if f.ours is not None]
        warm = [f for f in self.frames if f.warm]
        cold = [f for f in self.frames if not f.warm]
        after_first = [f for f in self.frames if f.lag is not None]
        floor = statistics.fmean(f.floor for f in pairs if f.floor is not None)
        ours = statistics.fmean(f.ours for f in pairs if f.ours is not None)
        floor_cubic = statistics.fmean(f.floor_cubic for f in pairs if f.floor_cubic is not None)
        ours_cubic = statistics.fmean(f.ours_cubic for f in pairs if f.ours_cubic is not None)
        return {
            "clip": self.clip, "style": self.style, "size": self.size,
            "pairs": len(pairs), "cut_pairs": sum(f.cut for f in self.frames[1:]),
            "floor": floor, "ours": ours,
            "independent": statistics.fmean(f.independent for f in pairs if f.independent is not None),
            "ours_over_floor": ours / floor, "cubic_ours_over_floor": ours_cubic / floor_cubic,
            "written_over_floor": statistics.fmean(f.written for f in pairs if f.written is not None)
            / statistics.fmean(f.written_floor for f in pairs if f.written_floor is not None),
            "fidelity_median": statistics.median(f.fidelity for f in self.frames),
            "fidelity_worst": max(f.fidelity for f in self.frames),
            "fidelity_last": self.frames[-1].fidelity,  # the end of a shot: how far quality has drifted
            "fidelity_cold": statistics.fmean(f.fidelity for f in cold) if cold else float("nan"),
            "lag": sum(bool(f.lag) for f in after_first), "lag_of": len(after_first),
            "written_lag": sum(bool(f.written_lag) for f in after_first)
            if any(f.written_lag is not None for f in after_first) else "?",
            "independent_lag": sum(bool(f.independent_lag) for f in after_first),
            "warm_iterations": statistics.median(f.iterations for f in warm) if warm else 0,
            "warm_seconds": statistics.median(f.seconds for f in warm) if warm else 0.0,
        }


def cut_clip(video: Path, first: int, frames: int, path: Path) -> None:
    """Frames ``first`` .. ``first + frames - 1`` of ``video``, at CRF 12 (near lossless), no sound."""
    select = f"trim=start_frame={first}:end_frame={first + frames},setpts=PTS-STARTPTS"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-vf", select, "-an",
                    "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(path)], check=True)


def decode(path: Path) -> list[np.ndarray]:
    import cv2

    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def stylise(clip: Path, style: Path, output: Path, size: int, options: dict[str, object]) -> dict:
    framestyle.run(clip, style, output, size=size, verbosity=-1, overwrite=True, **options)
    return json.loads(output.with_name(output.name + ".report.json").read_text())


def independent_frames(clip: Path, style: Path, size: int, options: dict[str, object]) -> Path:
    """The clip stylised frame by frame, each frame alone, with ``options``
    other than the warm frames' own; cached by the clip's and the style's
    bytes, the settings (defaults included, so a changed default is a new
    entry), framestyle's version and its encoder's options."""
    settings = {**{k: v for k, v in options.items() if k not in WARM_ONLY}, **INDEPENDENT}
    resolved = Settings(**settings).to_json()
    described = f"{size} {sorted(resolved.items())} {framestyle.__version__} {FORMATS[0]}"
    key = hashlib.sha256(clip.read_bytes() + style.read_bytes() + described.encode()).hexdigest()[:16]
    output = CACHE / f"independent-{key}.mp4"
    if not output.is_file():
        CACHE.mkdir(exist_ok=True)
        stylise(clip, style, output, size, settings)
    return output


def pair_error(frames: list[np.ndarray], t: int, motion, cubic: bool = False) -> float:  # type: ignore[no-untyped-def]
    return warp_error(frames[t], frames[t - 1], motion, cubic)


def measure(clip: Path, style: Path, size: int, options: dict[str, object], work: Path) -> tuple[ClipQuality, list]:
    report = stylise(clip, style, work / "ours.mp4", size, options)
    ours = decode(work / "ours.mp4")
    alone = decode(independent_frames(clip, style, size, options))
    height, width = ours[0].shape[:2]
    source = [resize(frame, width, height) for frame in decode(clip)]
    style_rgb = read_image(style)
    quality = ClipQuality(clip.name, style.name, size)
    for t, record in enumerate(report["frames"]):
        motion = estimate(source[t - 1], source[t]) if t else None
        paired = motion is not None and not motion.cut
        own = objective(ours[t], source[t], style_rgb, SCORED_MARGIN)
        own_alone = objective(alone[t], source[t], style_rgb, SCORED_MARGIN)
        lag = lag_alone = None
        if t and not (motion and motion.cut):
            lag = objective(ours[t], source[t - 1], style_rgb, SCORED_MARGIN) < own
            lag_alone = objective(alone[t], source[t - 1], style_rgb, SCORED_MARGIN) < own_alone
        quality.frames.append(FrameQuality(
            t, not paired, bool(record["warm"]),
            pair_error(source, t, motion) if paired else None,
            pair_error(ours, t, motion) if paired else None,
            pair_error(alone, t, motion) if paired else None,
            *(pair_error(frames, t, motion, cubic=True) if paired else None for frames in (source, ours, alone)),
            record.get("warp_error"), record.get("source_warp_error"),
            own / own_alone, lag, lag_alone, int(record["iterations"]), float(record["seconds"]),
            record.get("lag")))
    return quality, [source, ours, alone]


def write_strip(path: Path, rows: list[list[np.ndarray]], every: int = 3) -> None:
    """Source, ours and independent frames in three rows, every ``every``-th frame."""
    from PIL import Image

    picked = [[frames[t] for t in range(0, len(frames), every)] for frames in rows]
    Image.fromarray(np.vstack([np.hstack(row) for row in picked])).save(path)


def parse_clip(text: str) -> tuple[Path, int]:
    name, _, first = text.partition("@")
    return Path(name), int(first or 0)


def parse_option(text: str) -> tuple[str, object]:
    """``NAME=VALUE``: VALUE as JSON (numbers, true, lists), else as text."""
    name, _, value = text.partition("=")
    try:
        return name.replace("-", "_"), json.loads(value)
    except ValueError:
        return name.replace("-", "_"), value


def table_row(s: dict) -> str:
    return (f"| {s['clip']} | {s['style']} | {s['pairs']} ({s['cut_pairs']} cut) | {s['floor']:.2e} | "
            f"{s['ours']:.2e} | {s['independent']:.2e} | **{s['ours_over_floor']:.2f}×** "
            f"({s['cubic_ours_over_floor']:.2f}×; {s['written_over_floor']:.2f}× before encoding) | "
            f"{s['fidelity_median']:.3f} / {s['fidelity_last']:.3f} / {s['fidelity_worst']:.3f} / "
            f"{s['fidelity_cold']:.3f} | "
            f"{s['lag']} of {s['lag_of']} ({s['independent_lag']}; {s['written_lag']} before encoding) | "
            f"{s['warm_iterations']:.0f} | "
            f"{s['warm_seconds']:.2f} |")


def print_table(results: list[ClipQuality], header: bool = True) -> None:
    if header:
        print("| clip | style | pairs | floor | ours | independent | ours/floor (bicubic; unencoded) "
              "| fidelity median / last / worst / cold | lag (independent; before encoding) | warm it | s/warm frame |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for quality in results:
        print(table_row(quality.summary()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", help="VIDEO[@FIRST_FRAME]")
    parser.add_argument("--table", type=Path, nargs="+", default=[],
                        help="print the table of these --json files instead of running anything")
    parser.add_argument("--style", type=Path)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--option", action="append", default=[], help="a framestyle setting, NAME=VALUE")
    parser.add_argument("--strip", type=Path, help="write source/ours/independent strips into this folder")
    parser.add_argument("--json", type=Path, help="write every frame's figures here")
    args = parser.parse_args()
    if args.table:
        print_table([ClipQuality(entry["summary"]["clip"], entry["summary"]["style"], entry["summary"]["size"],
                                 [FrameQuality(**frame) for frame in entry["frames"]])
                     for path in args.table for entry in json.loads(path.read_text())])
        return
    if not args.clips or args.style is None:
        parser.error("give CLIP(s) and --style, or --table JSON")
    options = dict(map(parse_option, args.option))
    print(f"{args.style.name}, {args.frames} frames at {args.size} px, options {options or 'none'}, {cpu_kind()}")
    print_table([])
    results = []
    for text in args.clips:
        video, first = parse_clip(text)
        with tempfile.TemporaryDirectory(prefix="video-quality-") as folder:
            work = Path(folder)
            clip = work / f"{video.stem}@{first}.mp4"
            cut_clip(video, first, args.frames, clip)
            quality, rows = measure(clip, args.style, args.size, options, work)
        print_table([quality], header=False)
        results.append(quality)
        if args.strip:
            args.strip.mkdir(parents=True, exist_ok=True)
            write_strip(args.strip / f"{video.stem}@{first}-{args.style.stem}.png", rows)
    if args.json:
        args.json.write_text(json.dumps([{"summary": q.summary(), "frames": [asdict(f) for f in q.frames]}
                                         for q in results], indent=1))


if __name__ == "__main__":
    main()
