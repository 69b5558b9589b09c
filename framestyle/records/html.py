"""``framestyle report``: one self-contained HTML page per run.

For each image, its content, style and result side by side; for each video, a
strip of frames (source above, result below) and per-frame plots of loss,
iterations, seconds and temporal warp error; then the run's settings.
Pictures are embedded as JPEG data URIs and plots as inline SVG: the page
needs no server, no network and no script.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from framestyle.errors import FramestyleError
from framestyle.media.images import IMAGE_EXTENSIONS, read_image, write_text_atomic
from framestyle.records.manifest import MANIFEST_FILE, REPORT_FILE
from framestyle.records.video import report_path

THUMB = 320  # long side of embedded pictures, in pixels
STRIP = 8  # frames shown per video

STYLE_SHEET = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { display: inline-block; margin: 0 .6em .6em 0; vertical-align: top; }
figure img { display: block; height: 240px; width: auto; max-width: 100%; border: 1px solid #ccc; }
figure.style img { height: 120px; }
figcaption { font-size: .85em; color: #555; text-align: center; }
.strip img { width: 120px; margin-right: 2px; border: 0; }
.strip { white-space: nowrap; overflow-x: auto; }
table { border-collapse: collapse; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .2em .6em; text-align: left; vertical-align: top; }
.plots svg { margin: 0 1em 1em 0; }
.failed { color: #a00; }
"""


def write_report(manifest: Path, to: Path | None = None) -> Path:
    """Write the report of the run recorded in ``manifest``; return its path."""
    try:
        run = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FramestyleError(f"{manifest}: cannot read the run's record ({exc})") from None
    target = to or manifest.with_name(manifest.name.replace(MANIFEST_FILE, REPORT_FILE))
    write_text_atomic(target, render(run))
    return target


def render(run: dict[str, Any]) -> str:
    settings = run.get("settings", {})
    items = run.get("items", [])
    styles = style_thumbnails(settings.get("style", []), settings.get("style_weights"))
    sections = []
    for item in items:
        output = Path(item["output"])
        if item.get("status") == "failed" or not output.exists():
            continue
        if item.get("kind") == "video":
            sections.append(video_section(item, styles))
        else:
            sections.append(image_section(item, styles))
    failed = [item for item in items if item.get("status") == "failed"]
    title = f"framestyle run: {len(sections)} result(s)"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{STYLE_SHEET}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Run recorded {esc(run.get('created', ''))}. Output: {esc(settings.get('output', ''))}</p>",
        *sections,
        failures_section(failed),
        settings_section(settings),
        "</body></html>",
    ])


# pictures -----------------------------------------------------------------------


def data_uri(rgb: np.ndarray, long_side: int = THUMB) -> str:
    image = Image.fromarray(rgb)
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure(rgb: np.ndarray | None, caption: str, long_side: int = THUMB, kind: str = "picture") -> str:
    """A picture shown at a common height (small results are enlarged so that
    content and result can be compared side by side)."""
    if rgb is None:
        return f'<figure class="{kind}"><figcaption>{esc(caption)} (not available)</figcaption></figure>'
    return (f'<figure class="{kind}"><img src="{data_uri(rgb, long_side)}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def try_read(path: Path) -> np.ndarray | None:
    try:
        return read_image(path)
    except FramestyleError:
        return None


def style_thumbnails(paths: Sequence[str], weights: Sequence[float] | None) -> str:
    figures = []
    for number, raw in enumerate(paths):
        path = Path(raw)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if path.is_dir() else [path]
        weight = f", weight {weights[number]:g}" if weights and number < len(weights) else ""
        for file in files[:4]:
            figures.append(figure(try_read(file), f"style: {file.name}{weight}", 160, kind="style"))
    return "".join(figures)


def image_section(item: dict[str, Any], styles: str) -> str:
    output, source = Path(item["output"]), Path(item["input"])
    facts = describe_item(item)
    return (f"<section><h2>{esc(source.name)}</h2>"
            f"{figure(try_read(source), 'content: ' + str(source))}{styles}"
            f"{figure(try_read(output), 'result: ' + str(output))}"
            f"<p>{esc(facts)}</p></section>")


def describe_item(item: dict[str, Any]) -> str:
    parts = []
    if item.get("status") == "skipped":
        parts.append("done by an earlier run")
    if item.get("iterations"):
        parts.append(f"{item['iterations']} iterations")
    if item.get("seconds"):
        parts.append(f"{item['seconds']:.1f} s")
    if item.get("loss") is not None:
        parts.append(f"final loss {item['loss']:.4g}")
    if item.get("tiles"):
        parts.append(f"optimised in {item['tiles']} tiles (exact; --tile)")
    return ", ".join(parts)


# videos -------------------------------------------------------------------------


def sample_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """Up to ``count`` (index, RGB frame) pairs spread evenly over a video."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        wanted = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(count)}) if total else []
        frames = []
        for index in wanted:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = capture.read()
            if ok:
                frames.append((index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        return frames
    finally:
        capture.release()


def strip(frames: list[tuple[int, np.ndarray]], label: str) -> str:
    pictures = "".join(f'<img src="{data_uri(rgb, 240)}" alt="{esc(label)} frame {index + 1}" '
                       f'title="frame {index + 1}">' for index, rgb in frames)
    return f'<div class="strip" aria-label="{esc(label)}">{pictures}</div>'


def video_section(item: dict[str, Any], styles: str) -> str:
    output, source = Path(item["output"]), Path(item["input"])
    result_frames = sample_frames(output, STRIP) if output.is_file() else []
    source_frames = sample_frames(source, STRIP) if source.is_file() else []
    parts = [f"<section><h2>{esc(source.name)}</h2>", f"<p>{styles}</p>"]
    if source_frames:
        parts.append(f"<p>Source, frames {', '.join(str(i + 1) for i, _ in source_frames)}:</p>")
        parts.append(strip(source_frames, "source"))
    if result_frames:
        parts.append("<p>Result:</p>" + strip(result_frames, "result"))
    report = load_json(report_path(output))
    if report:
        summary = report.get("summary", {})
        parts.append(f"<p>{esc(video_summary(summary))}</p>")
        if spans := style_spans(report.get("frames", [])):
            parts.append(f"<p>Styles (--style-at): {esc(spans)}</p>")
        parts.append(frame_plots(report.get("frames", [])))
    parts.append("</section>")
    return "".join(parts)


def style_spans(frames: list[dict[str, Any]]) -> str:
    """Where each style of a schedule applies: "frames 1-6: a.jpg; 7-18: a.jpg → b.jpg; 19-40: b.jpg"."""
    runs: list[list[Any]] = []  # [first, last, label], frame numbers from 1
    for frame in frames:
        label = frame.get("style") or ""
        label = label.rsplit(" ", 1)[0] if "→" in label else label  # a fade's steps are one span
        if runs and runs[-1][2] == label and runs[-1][1] == frame["index"]:
            runs[-1][1] = frame["index"] + 1
        else:
            runs.append([frame["index"] + 1, frame["index"] + 1, label])
    if not any(label for _, _, label in runs):
        return ""
    return "; ".join(f"{'frame' if a == b else 'frames'} {a if a == b else f'{a}-{b}'}: {label}"
                     for a, b, label in runs)


def video_summary(summary: dict[str, Any]) -> str:
    text = [f"{summary.get('frames', 0)} frames"]
    for key, label in (("warm_iterations_mean", "warm frames {:.0f} iterations on average"),
                       ("cold_iterations_mean", "cold frames {:.0f}"), ("scene_cuts", "{} scene cut(s)"),
                       ("warp_error_mean", "mean E_warp {:.2e}"),
                       ("source_warp_error_mean", "the source's own {:.2e}"),
                       ("lagging_frames", "{} frames lag"), ("frames_per_minute", "{:.1f} frames/min"),
                       ("tiled_frames", "{} frames optimised in tiles")):
        if summary.get(key) is not None:
            text.append(label.format(summary[key]))
    return ", ".join(text)


def load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def frame_plots(frames: list[dict[str, Any]]) -> str:
    cuts = [f["index"] for f in frames if f.get("cut")]
    stylised = [f for f in frames if not f.get("reused")]
    plots = [
        line_plot("loss", [(f["index"], f.get("loss")) for f in stylised], cuts, log_scale=True),
        line_plot("iterations", [(f["index"], f.get("iterations")) for f in stylised], cuts),
        line_plot("seconds", [(f["index"], f.get("seconds")) for f in stylised], cuts),
        line_plot("temporal warp error E_warp (grey: the source's own)",
                  [(f["index"], f.get("warp_error")) for f in frames], cuts,
                  floor=[(f["index"], f.get("source_warp_error")) for f in frames]),
    ]
    note = " Frames reused from an interrupted run are left out of the loss, iterations and seconds." \
        if len(stylised) < len(frames) else ""
    return (f'<div class="plots">{"".join(plots)}</div>'
            f"<p>Per frame; dashed lines mark scene cuts.{esc(note)}</p>")


def line_plot(title: str, points: list[tuple[int, float | None]], cuts: list[int],
              log_scale: bool = False, width: int = 500, height: int = 150,
              floor: list[tuple[int, float | None]] | None = None) -> str:
    """An inline SVG line chart of ``points`` (frame index, value), with
    ``floor`` (a reference, the same way) in grey on the same scale."""

    def plottable(series: list[tuple[int, float | None]]) -> list[tuple[int, float]]:
        return [(x, float(y)) for x, y in series if y is not None and math.isfinite(y) and (y > 0 or not log_scale)]

    usable, reference = plottable(points), plottable(floor or [])
    left, right, top, bottom = 54, 10, 22, 24
    frame = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{esc(title)}">'
             f'<text x="{left}" y="14" font-size="12" font-weight="bold">{esc(title)}</text>')
    if not usable:
        return frame + f'<text x="{left}" y="{height // 2}" font-size="12">no data</text></svg>'
    scale = (lambda v: math.log10(v)) if log_scale else (lambda v: v)
    xs = [x for x, _ in usable]
    ys = [scale(y) for _, y in usable]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    ranged = ys + [scale(y) for _, y in reference]
    y0, y1 = min(ranged), max(ranged)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=False))
    label = (lambda v: f"{10 ** v:.3g}") if log_scale else (lambda v: f"{v:.3g}")
    parts = [frame,
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="none" stroke="#bbb"/>']
    parts += [f'<line x1="{px(c):.1f}" x2="{px(c):.1f}" y1="{top}" y2="{height - bottom}" stroke="#c60" '
              'stroke-dasharray="3,3"/>' for c in cuts if x0 <= c <= x1]
    if reference:
        grey = " ".join(f"{px(x):.1f},{py(scale(y)):.1f}" for x, y in reference)
        parts.append(f'<polyline fill="none" stroke="#999" stroke-width="1.5" points="{grey}"/>')
    parts.append(f'<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="{path}"/>')
    if len(usable) == 1:
        parts.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="2.5" fill="#1f5fbf"/>')
    parts += [f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{label(y1)}</text>',
              f'<text x="{left - 4}" y="{height - bottom}" font-size="10" text-anchor="end">{label(y0)}</text>',
              f'<text x="{left}" y="{height - 8}" font-size="10">frame {x0 + 1}</text>',
              f'<text x="{width - right}" y="{height - 8}" font-size="10" text-anchor="end">frame {x1 + 1}</text>',
              "</svg>"]
    return "".join(parts)


# the rest -----------------------------------------------------------------------


def failures_section(failed: list[dict[str, Any]]) -> str:
    if not failed:
        return ""
    rows = "".join(f"<tr><td>{esc(item['input'])}</td><td>{esc(item.get('message', ''))}</td></tr>"
                   for item in failed)
    return f'<h2 class="failed">Failed ({len(failed)})</h2><table><tr><th>input</th><th>why</th></tr>{rows}</table>'


def settings_section(settings: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{esc(key)}</th><td>{esc(json.dumps(value, default=str))}</td></tr>"
                   for key, value in settings.items() if key != "verbosity")
    return f"<h2>Settings</h2><table>{rows}</table>"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)
