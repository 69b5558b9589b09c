"""Memory and time of large images, tiled and whole (docs/guide/large-images.md).

    python benchmarks/tiled_memory.py                      # 1, 4, 12 and 24 MP
    python benchmarks/tiled_memory.py --megapixels 12 --iterations 3 --max-memory 8G

Each size runs in a fresh process (so its peak resident memory is its own):
a 4:3 photo made from the bundled sample by enlarging it, stylised at full
size for a few iterations at one scale, with ``--tile auto`` under
``--max-memory`` (and, where that runs it whole, with ``--tile 768`` to
time tiles), and whole (``--tile off``) where the memory model says the
whole pass fits in what the machine has free. Prints one JSON line per
run and a table: peak resident memory, seconds per iteration (the median
step after the first), the tiles used and the model's figure for a whole
run (pass, image-sized tensors, 20 pairs of history). Not a test: it takes minutes per size on two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "samples" / "photos" / "coffee.jpg"
STYLE = ROOT / "samples" / "styles" / "swirls.jpg"
FORCED_TILE = "768"  # where the whole image fits under the cap, tiles of this side are timed too

CHILD = r"""
import json, sys, time
from pathlib import Path
import framestyle
from framestyle.host import PluginHost
from framestyle.hookspecs import hookimpl

photo, style, out, tile, cap, iterations, precision = sys.argv[1:8]  # and the long side
steps = []

class Clock:
    @hookimpl
    def on_step(self, event):
        steps.append(time.perf_counter())

host = PluginHost(autoload=False)
host.register(Clock())
started = time.perf_counter()
options = dict(size=int(sys.argv[8]), iterations=int(iterations), scales=1, tile=tile, precision=precision,
               verbosity=-1)
if cap != "none":
    from framestyle.settings import parse_memory
    options["max_memory"] = parse_memory(cap)
end = framestyle.run([photo], style, out, host=host, **options)
record = json.loads(Path(out + ".framestyle-run.json").read_text())["items"][0] if end.exit_code == 0 else {}
status = Path("/proc/self/status").read_text()
peak_kib = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"exit": end.exit_code, "failed": [m for _, m in end.failed], "peak_gib": peak_kib / 2**20,
                  "steps": [b - a for a, b in zip(steps, steps[1:])], "tiles": record.get("tiles"),
                  "seconds": time.perf_counter() - started}))
"""


def make_photo(folder: Path, megapixels: float) -> Path:
    """A 4:3 photo of about ``megapixels``: the sample enlarged (Lanczos),
    so it has a real photo's colours and edges at that size."""
    from PIL import Image

    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = round(height * 4 / 3)
    image = Image.open(PHOTO).convert("RGB")
    crop_width = round(image.height * 4 / 3)
    left = (image.width - crop_width) // 2
    image = image.crop((left, 0, left + crop_width, image.height)).resize((width, height), Image.Resampling.LANCZOS)
    path = folder / f"photo-{width}x{height}.jpg"
    image.save(path, quality=92)
    return path


def run_one(photo: Path, folder: Path, tile: str, cap: str, iterations: int, precision: str, side: int) -> dict:
    out = folder / f"{photo.stem}-{tile}.png"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(photo), str(STYLE), str(out), tile, cap, str(iterations),
                           precision, str(side)], capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"exit": done.returncode, "error": done.stderr.strip().splitlines()[-1:] or ["killed"],
                "seconds": time.perf_counter() - started}
    return json.loads(lines[-1])


def whole_fits(width: int, height: int, precision: str) -> tuple[bool, float]:
    """Whether the memory model says a whole run fits what is free now, and its figure (GiB)."""
    import torch

    from framestyle.engine.device import autocast_dtype
    from framestyle.transfer.memory import MIN_WHOLE_HISTORY, frame_bytes, free_memory, pair_bytes, pass_bytes_per_pixel

    pixels = width * height
    whole = pixels * pass_bytes_per_pixel(autocast_dtype(precision, torch.device("cpu")))
    need = whole + frame_bytes(pixels) + MIN_WHOLE_HISTORY * pair_bytes(pixels)
    return need <= free_memory(torch.device("cpu")), need / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 4, 12, 24])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--max-memory", default="8G", help="the cap for the tiled runs (none: no cap)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--no-whole", action="store_true", help="skip the untiled runs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from framestyle.bench import cpu_kind

    print(f"# {cpu_kind()}; precision {args.precision}; {args.iterations} iterations at one scale", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for megapixels in args.megapixels:
            photo = make_photo(folder, megapixels)
            width, height = (int(v) for v in photo.stem.split("-")[1].split("x"))
            fits, model = whole_fits(width, height, args.precision)
            runs = [("auto", args.max_memory)]
            while runs:
                tile, cap = runs.pop(0)
                result = run_one(photo, folder, tile, cap, args.iterations, args.precision, max(width, height))
                if tile == "auto" and not result.get("tiles"):
                    runs.append((FORCED_TILE, args.max_memory))  # the whole image fitted: time tiles too
                elif tile == "auto" and fits and not args.no_whole:
                    runs.append(("off", "none"))
                result.update(width=width, height=height, tile=tile, cap=cap, whole_model_gib=round(model, 1))
                steps = result.get("steps") or []
                result["seconds_per_iteration"] = statistics.median(steps) if steps else None
                print(json.dumps(result), flush=True)
                rows.append(result)
    print(f"\n{'size':>11} {'MP':>5} {'tile':>5} {'cap':>5} {'tiles':>5} {'peak GiB':>8} {'s/iter':>7} "
          f"{'whole (model)':>14}")
    for row in rows:
        per = row["seconds_per_iteration"]
        print(f"{row['width']:>5}x{row['height']:<5} {row['width'] * row['height'] / 1e6:5.1f} {row['tile']:>5} "
              f"{row['cap']:>5} {row.get('tiles') or 0:>5} {row.get('peak_gib', float('nan')):8.2f} "
              f"{per if per is not None else float('nan'):7.1f} {row['whole_model_gib']:>10.1f} GiB"
              + ("" if row.get("exit") == 0 else f"  FAILED {row.get('failed') or row.get('error')}"))


if __name__ == "__main__":
    main()
