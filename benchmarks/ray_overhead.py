"""The same folder and video with the local executor and with ``--executor ray``
on a local Ray cluster of two nodes, side by side in one run.

    .venv/bin/python benchmarks/ray_overhead.py [--cores-per-node 1] [--quick]

Prints Ray's start-up time and the resident memory of Ray's own processes,
the wall time of each job both ways, and how the outputs compare: the same
bytes where each worker runs as many threads as the local run, else apart
by the CPU's float rounding (a sum over 2 threads is not the sum over 1). Every
job is a fresh ``framestyle run`` process, so the figures include what a
user waits for. A benchmark: run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ray_memory() -> float:
    """GiB resident in Ray's processes (GCS, raylets, workers, agents)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray" in cmdline and b"ray_overhead" not in cmdline and "VmRSS:" in text:
            total += int(text.split("VmRSS:")[1].split()[0]) * 1024
    return total / 2**30


def framestyle(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framestyle", "run", *args, "-q"], check=True, cwd=ROOT)
    return time.perf_counter() - started


def losses(folder: Path) -> list[float]:
    """The final objective of every image, and of every frame of a video."""
    found = []
    for manifest in folder.rglob("framestyle-run.json"):
        found += [item["loss"] for item in json.loads(manifest.read_text())["items"] if item["kind"] == "image"]
    for report in folder.rglob("*.report.json"):
        found += [frame["loss"] for frame in json.loads(report.read_text())["frames"]]
    return found


def compare(one: Path, other: Path) -> str:
    """"same bytes", or how far apart the decoded pixels and the objectives are."""
    import imageio.v3 as iio
    import numpy as np

    names = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and "framestyle-" not in p.name
                   and not p.name.endswith(".json"))
    if all((one / n).read_bytes() == (other / n).read_bytes() for n in names):
        return "same bytes"
    gaps = [np.abs(iio.imread(one / n).astype(int) - iio.imread(other / n).astype(int)) for n in names]
    differing = sum(int((gap > 0).sum()) for gap in gaps) / sum(gap.size for gap in gaps)
    mine, theirs = np.array(losses(one)), np.array(losses(other))
    return (f"pixels differ: at most {max(int(gap.max()) for gap in gaps)} levels, mean "
            f"{np.mean([gap.mean() for gap in gaps]):.3f}, {differing:.1%} of values; objective "
            f"{mine.mean():.4f} local, {theirs.mean():.4f} ray (mean over {len(mine)} images/frames)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores-per-node", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes and few iterations")
    options = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": options.cores_per_node,
                                                             "include_dashboard": False})
    cluster.add_node(num_cpus=options.cores_per_node)
    cluster.wait_for_nodes()
    print(f"Ray: two nodes up in {time.perf_counter() - started:.1f} s, {ray_memory():.2f} GiB resident")
    # --batch-size 2: the local executor makes the same plan as two workers
    # (a video in two segments), so the outputs can be compared byte for byte.
    style = ["--style", "samples/styles/swirls.jpg", "--precision", "fp32", "--batch-size", "2"]
    photos = ["--size", "128", "--iterations", "20"] if options.quick else ["--size", "256", "--iterations", "100"]
    video = (["--size", "64", "--first-iterations", "20", "--iterations", "10"] if options.quick
             else ["--size", "128", "--first-iterations", "100", "--iterations", "40"])
    jobs = {"photos": ["samples/photos", *photos], "video": ["samples/video/burrow.mp4", *video]}
    ray = ["--executor", "ray", "--ray-address", cluster.address, "--worker-cores", str(options.cores_per_node)]
    with tempfile.TemporaryDirectory() as scratch:
        for name, args in jobs.items():
            output = "out" if name == "photos" else "out.mp4"
            local = Path(scratch, "local", name)
            remote = Path(scratch, "ray", name)
            seconds_local = framestyle([*args, *style, "-o", str(local / output)])
            seconds_ray = framestyle([*args, *style, *ray, "-o", str(remote / output)])
            print(f"{name:>7}: local {seconds_local:6.1f} s, ray {seconds_ray:6.1f} s "
                  f"({seconds_ray / seconds_local:.2f}x); {compare(local, remote)}", flush=True)
        print(f"Ray's processes after the runs: {ray_memory():.2f} GiB resident")
    cluster.shutdown()


if __name__ == "__main__":
    main()
