"""``framestyle bench scale``: the ``ray`` executor's driver against a
simulated cluster of thousands of workers (:mod:`framestyle.scale.simulated`).

Each (workload, workers) pair runs in a fresh process, so that its peak
memory is its own: the real driver plans a real folder of images (hard links
to one small PNG) or a real two-hour film (a small test pattern, so that its
scene-cut scan is real too) and dispatches it to stand-in workers, with the
built-in records and progress plugins watching the events. Printed: one
JSON object per line per workload and worker count.

The workers' stylising times are scaled down so that a run fits in minutes
(``time_scale`` in the output: 0.1 means a second of GPU work took 0.1 s);
the driver's own costs never are, so a scaled run can only understate
utilisation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.scale.simulated import Pace

FILM_FPS = 24
IMAGE_SECONDS = 2.0  # a GPU's time for an image, all its iterations (an assumption: nothing measured on CUDA yet)
FRAME_SECONDS = 1.0  # and for a warm video frame
RESTART_SECONDS = 30.0  # Ray's restart of a dead worker: a process, torch, the network (an assumption)
LINKS = 50_000


def add_parser(commands: argparse._SubParsersAction) -> None:
    scale = commands.add_parser(
        "scale", help="the ray executor's driver against a simulated cluster of W workers",
        description="The ray executor's real driver, planner, dispatcher and reporters against a simulated "
                    "cluster of W stand-in workers, on a folder of images and a two-hour film. One JSON object "
                    "per line, per workload and W. The workers' stylising time is scaled down to fit --wall "
                    "(time_scale in the output); the driver's own costs never are.")
    scale.add_argument("--workers", type=lambda text: [int(part) for part in text.split(",")],
                       default=[10, 1000, 4000], metavar="W,W", help="cluster sizes (default: 10,1000,4000)")
    scale.add_argument("--workload", choices=["folder", "film"], action="append",
                       help="folder, film or both (repeat; default: both)")
    scale.add_argument("--images-per-worker", type=int, default=100,
                       help="the folder's images per worker, up to --max-images (default: 100)")
    scale.add_argument("--max-images", type=int, default=1_000_000, help="the folder's size at most (default: 1000000)")
    scale.add_argument("--film-hours", type=float, default=2.0, help="the film's length (default: 2)")
    scale.add_argument("--wall", type=float, default=60.0,
                       help="seconds each run's stylising should take: the time scale follows (default: 60)")
    scale.add_argument("--image-seconds", type=float, default=IMAGE_SECONDS,
                       help=f"a GPU's seconds per image (default: {IMAGE_SECONDS})")
    scale.add_argument("--frame-seconds", type=float, default=FRAME_SECONDS,
                       help=f"a GPU's seconds per warm video frame; a cold one takes 4x (default: {FRAME_SECONDS})")
    scale.add_argument("--kill", type=float, default=0.0, metavar="FRACTION",
                       help="also run each with this fraction of the workers killed halfway (e.g. 0.1)")
    scale.add_argument("--ray-workers", type=int, default=0, metavar="W",
                       help="also run each workload on a local Ray cluster of W stand-in workers (logical GPUs), "
                            "and simulated at the same W, to check the simulation against")
    scale.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "framestyle-scale",
                       help="where the simulated folder and film are made, once")


def main(args: argparse.Namespace) -> int:
    runs = [(workers, "simulated", 0.0) for workers in args.workers]
    runs += [(workers, "simulated", args.kill) for workers in args.workers if args.kill]
    runs += [(args.ray_workers, mode, 0.0) for mode in ("ray", "simulated") if args.ray_workers]
    for workers, mode, kill in runs:
        for workload in args.workload or ["folder", "film"]:
            config = {"workload": workload, "workers": workers, "mode": mode, "kill": kill, "cache": str(args.cache),
                      "images": min(args.max_images, args.images_per_worker * workers),
                      "film_hours": args.film_hours, "wall": args.wall,
                      "image_seconds": args.image_seconds, "frame_seconds": args.frame_seconds}
            done = subprocess.run([sys.executable, "-m", "framestyle.scale.bench", json.dumps(config)],
                                  stdout=subprocess.PIPE, text=True)
            if done.returncode != 0:
                print(f"framestyle: bench scale: {workload} on {workers} workers ({mode}) failed", file=sys.stderr)
                return 1
            print(done.stdout.strip().splitlines()[-1], flush=True)
    return 0


# ------------------------------------------------------------------ one run, in its own process


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """One workload on one cluster (``mode``: ``simulated``, or ``ray``: stand-ins on a local Ray cluster
    of logical GPUs), measured from the driver's side."""
    from framestyle.engine.driver import Driver
    from framestyle.settings import Settings
    from framestyle.transfer.weights import resolve_weights

    workload, workers, mode = config["workload"], config["workers"], config.get("mode", "simulated")
    cache = Path(config["cache"])
    source = folder_of(cache, config["images"]) if workload == "folder" else film_of(cache, config["film_hours"])
    pace = pace_for(config)
    out = Path(tempfile.mkdtemp(prefix="framestyle-scale-"))
    faults = faults_for(config, pace)
    cluster = Timed(simulated(workers, pace, faults) if mode == "simulated" else on_ray(workers, pace))
    try:
        settings = Settings(inputs=[source], style=[style_of(cache)], output=out / ("film.mp4" if workload == "film"
                                                                                      else "out"),
                            executor="measured", size=64, batch_size=1, precision="fp32", verbosity=0)
        host = host_with(cluster)
        weights = resolve_weights()
        started, cpu = time.time(), time.process_time()
        with contextlib.redirect_stderr(open(os.devnull, "w")):  # the progress lines: made, not shown
            driver = Driver(settings, host, weights)
            planned, planning_cpu = time.time(), time.process_time()
            summary = driver.run()
        ended, run_cpu = time.time(), time.process_time() - planning_cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if mode == "ray":
            import ray

            ray.shutdown()
    from framestyle.scale.simulated import timeline

    busy = sum(timeline(unit, pace).seconds for unit in driver.plan.units)  # every unit ran once
    wall, messages = ended - started, driver.executor.messages
    return {
        "workload": workload, "workers": workers, "mode": mode, "time_scale": round(pace.scale, 5),
        "killed_workers": len(faults.killed(workers)),
        "utilisation": round(busy / (workers * wall), 4),
        "driver_cpu_us_per_message": round(1e6 * run_cpu / max(1, messages), 1),
        # per second of the workers' clock (scaled), from the first unit's start to the run's end
        "messages_per_worker_second": round(messages / (workers * (ended - cluster.first_start)) * pace.scale, 3),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "first_dispatch_s": round(cluster.first_start - started, 2),
        "tail_s": round(ended - cluster.stylised_until, 2),
        "inputs": config["images"] if workload == "folder" else 1, "units": len(driver.plan.units),
        "done": summary.done, "failed": len(summary.failed), "messages": messages,
        "reruns": driver.executor.reruns, "planning_s": round(planned - started, 2),
        "planning_cpu_s": round(planning_cpu - cpu, 2), "run_cpu_s": round(run_cpu, 2), "wall_s": round(wall, 2),
        "pace": asdict(pace),
    }


class Timed:
    """A cluster whose units' first message and ends are timed as they pass to the driver."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.first_start = math.inf  # the first unit's first message (time.time)
        self.stylised_until = 0.0  # the last stylising unit's end (time.time): the assembly comes after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)

    def run(self, handle: Any, unit: Any, deliver: Any) -> None:
        from framestyle.engine.executors.ray.cluster import Done
        from framestyle.engine.units import AssembleVideo, EncodeChunk

        def timed(message: Any) -> None:
            if self.first_start == math.inf:
                self.first_start = min(self.first_start, time.time())
            if isinstance(message, Done) and not isinstance(unit, AssembleVideo | EncodeChunk):
                self.stylised_until = max(self.stylised_until, time.time())
            deliver(message)

        self.cluster.run(handle, unit, timed)


def simulated(workers: int, pace: Pace, faults: Any) -> Any:
    from framestyle.scale.simulated import SimulatedCluster

    return SimulatedCluster(workers, pace, faults)


def faults_for(config: dict[str, Any], pace: Pace) -> Any:
    """``kill``: the fraction of the workers killed halfway through the stylising, each back after an actor's
    restart (RESTART_SECONDS, scaled with the rest)."""
    from framestyle.scale.simulated import Faults

    return Faults(config.get("kill", 0.0), config["wall"] / 2, RESTART_SECONDS * pace.scale)


def on_ray(workers: int, pace: Pace) -> Any:
    """Stand-in workers on a Ray cluster of this machine with a logical GPU each."""
    import ray

    from framestyle.engine.executors.ray.cluster import RayCluster
    from framestyle.scale.simulated import StandInWorker

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=workers, num_gpus=workers, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    return RayCluster(StandInWorker, (pace,))


def host_with(cluster: Any) -> Any:
    """A plugin host whose ``measured`` executor is the ray executor on ``cluster``."""
    from framestyle.engine.executors.ray.executor import RayExecutor
    from framestyle.hookspecs import hookimpl
    from framestyle.host import PluginHost
    from framestyle.types import ExecutorSpec

    class Measured:
        @hookimpl
        def register_executors(self, register: Any) -> None:
            register(ExecutorSpec("measured", lambda: RayExecutor(cluster), in_process=True,
                                  description="the ray executor on the benchmark's cluster"))

    host = PluginHost(autoload=False)
    host.register(Measured(), name="measured-cluster")
    return host


def pace_for(config: dict[str, Any]) -> Pace:
    """The stand-ins' pace, scaled so that a worker's share of the work takes ``wall`` seconds (never slower
    than a GPU)."""
    from framestyle.scale.simulated import Pace

    image, frame, workers = config["image_seconds"], config["frame_seconds"], config["workers"]
    if config["workload"] == "folder":
        share = image * config["images"] / workers
    else:
        share = frame * config["film_hours"] * 3600 * FILM_FPS / workers
    return Pace(image=image, cold_frame=4 * frame, warm_frame=frame, scale=min(1.0, config["wall"] / share))


# ------------------------------------------------------------------ the inputs, made once


def folder_of(cache: Path, images: int) -> Path:
    """A folder of ``images`` PNGs: hard links to a few small images, so that a million cost no space (a
    file takes at most ``LINKS`` links on some file systems)."""
    folder = cache / f"folder-{images}"
    if folder.is_dir() and (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index in range(images):
        one = cache / f"{folder.name}.{index // LINKS}.png"  # its own: links to a file add up over folders
        if index % LINKS == 0:
            write_pattern(one, 64, 48)
        os.link(one, folder / f"{index:07d}.png")
    (folder / ".complete").touch()
    return folder


def film_of(cache: Path, hours: float) -> Path:
    """A film of ``hours`` at 24 frames/s: a moving test pattern, 64x36 px."""
    film = cache / f"film-{hours:g}h.mp4"
    if film.exists():
        return film
    from imageio_ffmpeg import get_ffmpeg_exe

    cache.mkdir(parents=True, exist_ok=True)
    partial = film.with_suffix(".partial.mp4")
    subprocess.run([get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=64x36:rate={FILM_FPS}:duration={hours * 3600:g}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(partial)], check=True)
    partial.rename(film)
    return film


def style_of(cache: Path) -> Path:
    style = cache / "style.png"
    if not style.exists():
        write_pattern(style, 48, 48)
    return style


def write_pattern(path: Path, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path)


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
