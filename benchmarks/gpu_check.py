"""The CUDA checks of ``benchmarks/gpu_check.sh``, and the parser that turns
their printed output into one JSON document.

    python benchmarks/gpu_check.py oom FOLDER       out-of-memory halving under a low memory cap
    python benchmarks/gpu_check.py compile          --compile against eager, 512 px
    python benchmarks/gpu_check.py collect FOLDER   every *.txt in FOLDER -> JSON on stdout

The checks print the lines that framestyle itself prints (its bench table,
its log), so ``collect`` reads the same format whether the text came from a
GPU or, in the tests, from a CPU.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

BENCH_ROW = re.compile(r"^\s*(fp32|bf16|fp16)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.eE+-]+)\s+([\d.eE+-]+)\s+"
                       r"([\d.eE+-]+)\s+([\d.]+)\s*$")
VIDEO = re.compile(r"^video (\S+) at (\d+) px, (\w+), batch (\d+): ([\d.]+) frames/s \((.*)\)$")
DEVICE = re.compile(r"^framestyle bench: (.*?), (\d+)x\d+ px")
AUTO_BATCH = re.compile(r"batch size (\d+) \(auto, (\S+)\)")
HALVED = re.compile(r"out of memory with (\d+) frame\(s\) in a batch; continuing with (\d+)")
COMPILE = re.compile(r"^compile: eager ([\d.]+) s, compiled first ([\d.]+) s, compiled again ([\d.]+) s "
                     r"\((\d+) px, (\d+) iterations\)$")
RESULT = re.compile(r"^(\w[\w ]*): (\d+)$")


def parse(texts: dict[str, str]) -> dict[str, Any]:
    """The figures in the checks' output, by file name (``bench``,
    ``video``, ``auto``, ``oom``, ``compile``)."""
    found: dict[str, Any] = {"bench": [], "video": [], "auto_batch": None, "oom_halvings": [], "compile": None,
                             "device": None, "results": {}}
    for name, text in texts.items():
        for line in text.splitlines():
            line = line.removeprefix("framestyle: ").removeprefix("warning: ")
            if match := DEVICE.match(line):
                found["device"] = match[1]
            elif match := BENCH_ROW.match(line):
                precision, batch, ms, ms_image, gflop, gflops, peak, share = match.groups()
                found["bench"].append({
                    "precision": precision, "batch": int(batch), "ms_per_iteration": float(ms),
                    "iterations_per_s": 1000 / float(ms), "images_per_s": 1000 / float(ms_image),
                    "gflop_per_iteration": float(gflop), "gflops": float(gflops), "peak_gflops": float(peak),
                    "fraction_of_peak": float(share)})
            elif match := VIDEO.match(line):
                clip, size, precision, batch, fps, described = match.groups()
                found["video"].append({"clip": clip, "size": int(size), "precision": precision,
                                       "batch": int(batch), "frames_per_s": float(fps), "described": described})
            elif match := AUTO_BATCH.search(line):
                found["auto_batch"] = {"batch": int(match[1]), "device": match[2]}
            elif match := HALVED.search(line):
                found["oom_halvings"].append([int(match[1]), int(match[2])])
            elif match := COMPILE.match(line):
                eager, first, again, size, iterations = match.groups()
                found["compile"] = {"eager_s": float(eager), "compiled_first_s": float(first),
                                    "compiled_again_s": float(again), "size": int(size),
                                    "iterations": int(iterations), "speedup": float(eager) / float(again)}
            elif (match := RESULT.match(line)) and name in ("oom", "auto"):
                found["results"][f"{name}: {match[1]}"] = int(match[2])
    return found


def collect(folder: Path) -> dict[str, Any]:
    """The figures of every step's output in ``folder``, and each step's exit status."""
    found = parse({path.stem: path.read_text(errors="replace") for path in sorted(folder.glob("*.txt"))})
    found["exit_status"] = {path.stem: int(path.read_text().strip() or -1) for path in folder.glob("*.status")}
    return found


def out_of_memory_check(folder: Path) -> None:
    """Eight 512-px images at --batch-size 8 with the process capped at
    about three images' memory: the batch must halve and every image end."""
    import numpy as np
    import torch

    import framestyle
    from framestyle.log import setup_logging

    setup_logging(0)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, 3 * 2**30 / total))
    rng = np.random.default_rng(0)
    inputs = folder / "oom-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for n in range(8):
        Image.fromarray((rng.random((512, 512, 3)) * 255).astype(np.uint8)).save(inputs / f"{n}.png")
    summary = framestyle.run(inputs, Path(framestyle.__file__).parent / "data" / "swirls.jpg", folder / "oom-out",
                             size=512, iterations=20, batch_size=8, device="cuda", verbosity=0)
    print(f"done: {summary.done}")
    print(f"exit code: {summary.exit_code}")


def compile_check(size: int = 512, iterations: int = 100) -> None:
    import numpy as np

    import framestyle

    rng = np.random.default_rng(0)
    content = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    style = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    seconds = []
    for compiled in (False, True, True):
        started = time.perf_counter()
        framestyle.stylize(content, style, size=size, iterations=iterations, device="cuda", compile=compiled)
        seconds.append(time.perf_counter() - started)
    print(f"compile: eager {seconds[0]:.2f} s, compiled first {seconds[1]:.2f} s, compiled again {seconds[2]:.2f} s "
          f"({size} px, {iterations} iterations)")


def main(argv: list[str]) -> int:
    if argv[:1] == ["collect"] and len(argv) == 2:
        print(json.dumps(collect(Path(argv[1])), indent=1))
        return 0
    if argv[:1] == ["oom"] and len(argv) == 2:
        out_of_memory_check(Path(argv[1]))
        return 0
    if argv == ["compile"]:
        compile_check()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
