"""``--executor ray`` on a real Ray cluster of two nodes with one CPU each,
started once for the module (Ray's start costs seconds on 2 cores).

The outputs must be the local executor's byte for byte, whatever happens
to the workers: one killed with SIGKILL mid-video and a node removed; an
input that kills its worker every time fails alone; Ctrl-C on the CLI
exits 130 with nothing under a final name, and the rerun completes the
same video.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import SHALLOW, SHALLOW_ARGS, make_video, outputs, sample, save

from framestyle.engine.driver import Driver

pytest.importorskip("ray", reason="Ray is a test dependency: pip install -e '.[test]' (dev.py test installs it)")

from framestyle.engine.executors.ray import executor as ray_executor
from framestyle.engine.executors.ray.actor import RayWorker
from framestyle.engine.executors.ray.joining import Placement, worker_layout
from framestyle.host import PluginHost
from framestyle.settings import Settings

# One pytest-xdist worker for the module: its fixtures are built once.
pytestmark = pytest.mark.xdist_group("ray")

MB = 1 << 20


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    # Dead nodes are noticed within about a second, not Ray's default 15 s.
    health = {"health_check_period_ms": 200, "health_check_failure_threshold": 3}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80 * MB, "include_dashboard": False, "_system_config": health})
    cluster.add_node(num_cpus=1, object_store_memory=80 * MB)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def job(tmp_path_factory, weights):
    """Two photos and a 24-frame clip that the local executor splits into
    two segments (--batch-size 2), and the local executor's outputs."""
    root = tmp_path_factory.mktemp("ray-job")
    folder = root / "in"
    save(folder / "a.png", sample("chelsea.jpg", 40))
    save(folder / "b.png", sample("coffee.jpg", 40))
    make_video(folder / "clip.mp4", frames=24, width=48, height=32, audio=True)
    save(root / "style.png", sample("swirls.jpg", 40))
    settings = Settings(inputs=[folder], style=[root / "style.png"], output=root / "local", size=32, iterations=4,
                        first_iterations=6, min_iterations=4, batch_size=2, precision="fp32", verbosity=-1,
                        **SHALLOW)
    summary = run_as_a_worker(settings, weights)
    assert summary.exit_code == 0 and summary.done == 3
    return settings


def run(settings: Settings, weights, host: PluginHost | None = None):
    return Driver(settings, host or PluginHost(autoload=False), weights).run()


def run_as_a_worker(settings: Settings, weights):
    """A local run on one intra-op thread, as the Ray workers here have
    (--worker-cores 1): fp32's last bits follow the thread count, and the
    bytes are compared whichever way pytest was started."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(settings, weights)
    finally:
        torch.set_num_threads(threads)


def on_ray(settings: Settings, cluster, output: Path, **changes) -> Settings:
    return replace(settings, output=output, executor="ray", ray_address=cluster.address, worker_cores=1, **changes)


def same_bytes(one: Path, other: Path) -> list[str]:
    written = outputs(one)
    assert written == outputs(other)
    return [name for name in written if not name.endswith(".json") and
            (one / name).read_bytes() != (other / name).read_bytes()]


def test_a_folder_and_a_split_video_give_the_local_bytes(job, cluster, tmp_path, weights):
    driver = Driver(on_ray(job, cluster, tmp_path / "out"), PluginHost(autoload=False), weights)
    assert [type(unit).__name__ for unit in driver.plan.units].count("VideoSegment") == 2
    summary = driver.run()
    assert summary.exit_code == 0 and summary.done == 3
    assert outputs(tmp_path / "out") == ["a.png", "b.png", "clip.mp4", "clip.mp4.report.json"]
    assert same_bytes(job.output, tmp_path / "out") == []
    workers = {unit: where.pid for unit, where in driver.executor.placed}
    segments = [pid for unit, pid in workers.items() if unit.startswith("segment:")]
    assert len(segments) == 2 and segments[0] != segments[1]  # the video's segments on two workers


def test_a_style_schedule_across_segments_gives_the_local_bytes(job, cluster, tmp_path, weights):
    """The units carry the resolved schedule to the workers: a change that
    fades in across the two segments' boundary, the same bytes as local."""
    clip = next(Path(path) for path in job.inputs if Path(path).is_dir()) / "clip.mp4"
    mosaic = save(tmp_path / "mosaic.png", sample("mosaic.jpg", 40))
    scheduled = replace(job, inputs=[clip], output=tmp_path / "local", style_at=[f"9={mosaic}"], style_fade=8)
    assert run_as_a_worker(scheduled, weights).exit_code == 0
    driver = Driver(on_ray(scheduled, cluster, tmp_path / "ray"), PluginHost(autoload=False), weights)
    assert [type(unit).__name__ for unit in driver.plan.units].count("VideoSegment") == 2
    assert driver.run().exit_code == 0
    labels = [frame["style"] for frame in json.loads((tmp_path / "ray" / "clip.mp4.report.json").read_text())["frames"]]
    assert labels[7] == "style.png" and labels[8].startswith("style.png → mosaic.png") and labels[16] == "mosaic.png"
    assert same_bytes(tmp_path / "local", tmp_path / "ray") == []


def test_a_killed_worker_and_a_removed_node_lose_nothing(job, cluster, tmp_path, weights):
    """Once the video has kept frames, the head node's worker is killed
    (SIGKILL) and the other node removed, each while running a segment.
    The run still ends well, the video is the uninterrupted one, and the
    head's worker, restarted with a new pid, finishes the work."""
    video = replace(job, inputs=[job.inputs[0] / "clip.mp4"])
    out = tmp_path / "clip.mp4"
    driver = Driver(on_ray(video, cluster, out), PluginHost(autoload=False), weights)
    work = tmp_path / ".clip.mp4.framestyle-work"
    head = cluster.head_node.node_id
    removed: list[float] = []

    def faults() -> None:
        placed = driver.executor.placed
        until(lambda: len(placed) == 2 and len(list(work.glob("*_*.png"))) >= 2)
        [killed] = [where.pid for _, where in placed if where.node == head]
        os.kill(killed, signal.SIGKILL)
        node = next(node for node in cluster.list_all_nodes() if node.node_id != head)
        cluster.remove_node(node)
        removed.append(time.monotonic())

    injector = threading.Thread(target=faults, daemon=True)
    injector.start()
    summary = driver.run()
    ended = time.monotonic()
    injector.join(timeout=5)
    cluster.add_node(num_cpus=1, object_store_memory=80 * MB)  # for the tests after this one
    assert removed and removed[0] < ended, "the run ended before the faults"
    assert summary.exit_code == 0 and summary.done == 1
    assert out.read_bytes() == (job.output / "clip.mp4").read_bytes()
    placed = list(driver.executor.placed)
    before = {where.pid for _, where in placed[:2]}  # the two workers as they started
    again = [(unit, where.pid) for unit, where in placed[2:]]
    assert any(unit.startswith("segment:") for unit, _ in again), placed  # a segment ran again
    assert {pid for _, pid in again} - before, placed  # on the head's worker, restarted as a new process


# Loaded into the workers with -p: a second a frame, so that the units
# outlast a node's joining.
SLOW = """
import time
import framestyle

@framestyle.hookimpl
def init_image(job):
    time.sleep(1.0)
"""


def test_a_node_that_joins_mid_run_gets_work(job, cluster, tmp_path, weights, monkeypatch):
    """One node when the run connects; another joins after (in the main
    thread: Ray starts a node's processes only from there): its worker
    takes units too, and every photo is done."""
    monkeypatch.setattr(ray_executor, "JOIN_SECONDS", 0.5)
    head = cluster.head_node.node_id
    for node in [node for node in cluster.list_all_nodes() if node.node_id != head]:
        cluster.remove_node(node)
    folder = tmp_path / "in"
    for number in range(10):
        save(folder / f"photo{number}.png", sample(["chelsea.jpg", "coffee.jpg"][number % 2], 40))
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW)
    settings = on_ray(replace(job, inputs=[folder], batch_size=1), cluster, tmp_path / "out")
    driver = Driver(settings, PluginHost([str(plugin)], autoload=False), weights)
    assert {place.node for place in driver.executor.layout} == {head}
    joined = cluster.add_node(num_cpus=1, object_store_memory=80 * MB).node_id  # it stays, for the tests after
    summary = driver.run()
    assert summary.exit_code == 0 and summary.done == 10
    nodes = [where.node for _, where in driver.executor.placed]
    assert nodes[0] == head and joined in nodes, nodes


def until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


POISON = '''
import os, signal
import framestyle

@framestyle.hookimpl
def init_image(job):
    if job.source.path.name.startswith("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_an_input_that_kills_its_worker_fails_alone(job, cluster, tmp_path, weights, monkeypatch):
    monkeypatch.setattr(ray_executor, "ATTEMPTS", 2)
    folder = tmp_path / "in"
    save(folder / "good.png", sample("chelsea.jpg", 40))
    save(folder / "poison.png", sample("coffee.jpg", 40))
    plugin = tmp_path / "poison.py"
    plugin.write_text(POISON)
    settings = on_ray(replace(job, inputs=[folder]), cluster, tmp_path / "out")
    summary = run(settings, weights, PluginHost([str(plugin)], autoload=False))
    assert summary.exit_code == 1 and summary.done == 1
    [(path, message)] = summary.failed
    assert path.name == "poison.png" and "its worker died 2 times" in message
    assert outputs(tmp_path / "out") == ["good.png"]


# Loaded into the workers with -p: 0.2 s more a frame, so that the Ctrl-C
# below lands mid-video however fast the shallow frames are.
PACE = '''
import time
import framestyle

@framestyle.hookimpl
def init_image(job):
    time.sleep(0.2)
'''


def test_ctrl_c_on_the_cli_exits_130_and_the_rerun_completes_the_video(job, cluster, tmp_path, weights):
    """SIGINT once the video has finished frames: exit 130 within seconds, no
    output under its final name, stdout empty (Ray's logs stay out of it);
    a rerun on one machine (the local executor, which on its own would not
    split the video) keeps the saved segment plan, reuses the kept frames
    and gives the local video."""
    out = tmp_path / "clip.mp4"
    work = tmp_path / ".clip.mp4.framestyle-work"
    pace = tmp_path / "pace.py"
    pace.write_text(PACE)
    args = [sys.executable, "-m", "framestyle", "run", "-p", pace, job.inputs[0] / "clip.mp4", "--style", job.style[0],
            "-o", out, "--size", 32, "--iterations", 4, "--first-iterations", 6, "--min-iterations", 4,
            "--batch-size", 2, "--precision", "fp32", "--executor", "ray", "--ray-address", cluster.address,
            "--worker-cores", 1, *SHALLOW_ARGS]
    process = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # A finished frame (frame_*), not only a segment's overlap (head_*,
    # tail_*), which the rerun uses but does not count as a reused frame.
    until(lambda: any(work.glob("frame_*.png")) or process.poll() is not None)
    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert time.monotonic() - interrupted < 10, stderr
    assert stdout == "" and not out.exists()
    assert any(work.glob("frame_*.png"))

    summary = run_as_a_worker(replace(job, inputs=[job.inputs[0] / "clip.mp4"], output=out, batch_size=0), weights)
    assert summary.exit_code == 0 and summary.done == 1
    assert out.read_bytes() == (job.output / "clip.mp4").read_bytes()
    report = json.loads((tmp_path / "clip.mp4.report.json").read_text())
    assert report["summary"]["reused_frames"] > 0  # the interrupted run's frames were kept and reused


def test_without_ray_installed_the_executor_is_a_usage_error(monkeypatch, tmp_path, capsys):
    from framestyle.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    save(tmp_path / "a.png", sample("chelsea.jpg", 40))
    code = main(["run", str(tmp_path / "a.png"), "--style", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                 "--executor", "ray"])
    assert code == 2
    assert 'pip install "framestyle[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_workers_one_per_gpu_or_per_few_cores():
    nodes = [{"NodeID": "gpu", "Alive": True, "Resources": {"CPU": 16.0, "GPU": 4.0}},
             {"NodeID": "cpu", "Alive": True, "Resources": {"CPU": 10.0}},
             {"NodeID": "small", "Alive": True, "Resources": {"CPU": 2.0}},
             {"NodeID": "gone", "Alive": False, "Resources": {"CPU": 64.0}},
             {"NodeID": "head", "Alive": True, "Resources": {}}]
    assert worker_layout(nodes, 4) == ([Placement("gpu", 4, 1)] * 4 + [Placement("cpu", 5, 0)] * 2
                                       + [Placement("small", 2, 0)])


def test_a_node_that_does_not_see_the_storage_says_what(tmp_path):
    """The probe a worker runs on its node (called here as plain Python)."""
    token = tmp_path / "out" / ".framestyle-probe"
    token.parent.mkdir()
    token.write_text("another run's")
    problems = RayWorker.probe(None, token, "this run's", [tmp_path / "in", tmp_path])  # type: ignore[arg-type]
    assert problems == [f"{token.parent} is another folder here than on the driver", f"{tmp_path / 'in'} "
                        "(no such file or folder)"]
    token.unlink()
    assert RayWorker.probe(None, token, "x", [])[0].startswith(f"{token.parent} (No such file")  # type: ignore[arg-type]
