"""Kill real framestyle processes, rerun, and check that nothing finished
was lost or redone and that the end result is identical to an uninterrupted
run.

Each kind of job meets each kind of stop once: a folder is killed (SIGKILL)
at a random moment here and interrupted (SIGTERM, handled as Ctrl-C) on its
second photo in test_cli.py; a video is killed at fixed points, in one
segment and in two, here, and interrupted (Ctrl-C) after its 4th frame in
test_video.py. The random moment is random on purpose; a failure prints the
seed, and ``FRAMESTYLE_INTERRUPT_SEED=N`` replays it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SHALLOW_ARGS, make_video, sample, save

from framestyle.cli import main

# One pytest-xdist worker for the module: its fixtures are built once.
pytestmark = pytest.mark.xdist_group("interrupt")

SEED = int(os.environ.get("FRAMESTYLE_INTERRUPT_SEED") or random.SystemRandom().randrange(10**6))


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once, so the processes below only read the cache."""


def restore_sigint() -> None:
    # A job started from a non-interactive shell inherits SIGINT ignored;
    # give the child the default, so that Python installs its Ctrl-C handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[object], extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # The same environment for the reference runs (made in module fixtures,
    # outside the per-test isolation) and for the runs under test.
    env = {**os.environ, "FRAMESTYLE_DISABLE_PLUGIN_AUTOLOAD": "1", "TORCH_HOME": os.devnull + "-torch",
           **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "framestyle", *map(str, args)], text=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=restore_sigint)


def finish(args: list[object]) -> tuple[int, str, float]:
    started = time.perf_counter()
    process = start(args)
    _, err = process.communicate(timeout=300)
    return process.returncode, err, time.perf_counter() - started


def interrupt(args: list[object], signum: int, after: float) -> int:
    process = start(args)
    try:
        process.wait(timeout=after)
    except subprocess.TimeoutExpired:
        process.send_signal(signum)
    process.communicate(timeout=120)
    return process.returncode


def killed_mid_folder(args: list[object], out: Path) -> str:
    """Run into ``out`` and SIGKILL it at a random moment (within 0.1 s)
    after its first output is complete, so that the kill lands among the
    photos, not in the start-up; return a description that replays it."""
    delay = random.Random(f"{SEED}-{out.name}").uniform(0, 0.1)
    context = f"seed {SEED}, SIGKILL {delay:.2f} s after the first output"
    process = start(["run", *args, "-o", out])
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(not p.name.startswith(".") and p.suffix == ".png" for p in out.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, context
        time.sleep(0.01)
    time.sleep(delay)
    process.kill()
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, context  # killed, not finished first
    return context


def files(folder: Path) -> dict[str, Path]:
    """The outputs (and any hidden partial files) under ``folder``, not the run's records."""
    records = set(p.name for p in folder.glob("framestyle-run.*"))
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file() and p.name not in records}


def count(summary: str, word: str) -> int:
    """``3`` from the summary line's ``3 done`` (absent: 0)."""
    found = re.search(rf"(\d+) {word}\b", summary.splitlines()[-1])
    return int(found.group(1)) if found else 0


def identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


@pytest.fixture(scope="module")
def folder_job(tmp_path_factory, weights) -> tuple[list[object], Path, float]:
    """A folder of six photos and its uninterrupted result."""
    root = tmp_path_factory.mktemp("interrupt-folder")
    names = ["chelsea.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg"]
    for number in range(6):
        save(root / "in" / f"photo{number}.png", sample(names[number % 4], 40 + 4 * number))
    save(root / "style.png", sample("swirls.jpg", 48))
    # One photo after another: batched, the photos of a size end together, and a kill after the first
    # output would mostly land after the last.
    args = [root / "in", "--style", root / "style.png", "--size", "32", "--iterations", "8", "--batch-size", "1",
            *SHALLOW_ARGS]
    code, err, seconds = finish(["run", *args, "-o", root / "reference"])
    assert code == 0, err
    return args, root / "reference", seconds


def test_folder_run_killed_at_a_random_moment_resumes_to_the_same_result(folder_job, tmp_path):
    args, reference, _ = folder_job
    expected = {name: path.read_bytes() for name, path in files(reference).items()}
    out = tmp_path / "out"
    context = killed_mid_folder(args, out)
    finished = files(out)
    visible = {name: path for name, path in finished.items() if not Path(name).name.startswith(".")}
    for name, path in visible.items():  # whatever sits under a final name is complete and right
        assert path.read_bytes() == expected[name], context
    before = {name: identity(path) for name, path in visible.items()}
    assert 1 <= len(before) < len(expected), context  # the kill landed among the photos

    code, err, _ = finish(["run", *args, "-o", out])
    assert code == 0, (context, err)
    assert (count(err, "skipped"), count(err, "done")) == (len(before), len(expected) - len(before)), context
    after_rerun = files(out)
    assert {name: path.read_bytes() for name, path in after_rerun.items()} == expected, context
    assert all(identity(after_rerun[name]) == before[name] for name in before), context  # not redone


@pytest.fixture(scope="module")
def video_job(tmp_path_factory, weights) -> tuple[list[object], Path, float]:
    """A 12-frame clip with sound and its uninterrupted result."""
    root = tmp_path_factory.mktemp("interrupt-video")
    clip = make_video(root / "clip.mp4", frames=12, width=48, height=32)
    save(root / "style.png", sample("swirls.jpg", 48))
    # fp32 whatever the CPU: its kernels' last bits depend on the pass layout,
    # which is what a resume in segments must keep the same (bf16's here did not show it).
    args = [clip, "--style", root / "style.png", "--size", "32", "--iterations", "8", "--min-iterations", "3",
            "--precision", "fp32", *SHALLOW_ARGS]
    code, err, seconds = finish(["run", *args, "-o", root / "reference.mp4"])
    assert code == 0, err
    return args, root / "reference.mp4", seconds


# A plugin loaded into the run under test with -p: it kills its own process
# with SIGKILL at a fixed point, so that every point is tried on every run.
KILLER = '''
import os, signal
import framestyle
import framestyle.media.encodings

AFTER = int(os.environ.get("KILL_AFTER_FRAMES", "0"))
finished = 0

@framestyle.hookimpl
def on_frame_end(event):
    global finished
    if not event.reused:
        finished += 1
        if finished == AFTER:
            os.kill(os.getpid(), signal.SIGKILL)

if os.environ.get("KILL_IN_ENCODE"):
    def close(self):
        self.process.stdin.close()  # every frame is in; ffmpeg is writing the file
        os.kill(os.getpid(), signal.SIGKILL)
    framestyle.media.encodings.VideoEncoder.close = close
'''


@pytest.fixture(scope="module")
def two_segment_job(tmp_path_factory, video_job) -> tuple[list[object], Path, float]:
    """A 16-frame clip, long enough for --batch-size 2 to split it into two
    segments side by side, and its uninterrupted result."""
    root = tmp_path_factory.mktemp("interrupt-segments")
    clip = make_video(root / "clip.mp4", frames=16, width=48, height=32)
    args = [clip, *video_job[0][1:], "--batch-size", "2"]
    code, err, seconds = finish(["run", *args, "-o", root / "reference.mp4", "-v"])
    assert code == 0 and "2 segments from frames 1, 9" in err, err
    return args, root / "reference.mp4", seconds


@pytest.mark.parametrize("job", ["video_job", "two_segment_job"], ids=["one segment", "two segments"])
def test_video_killed_at_fixed_points_resumes_to_the_same_video(job, tmp_path, request):
    """One output, killed (SIGKILL) again and again as each run resumes the
    last: after the first finished frame, after all but one of the n, and
    while the final mp4 is encoded. Each run keeps every frame
    kept before it and stylises only new ones (a redone frame would count
    towards its kill point and leave fewer kept), and the last run, which
    only encodes, gives the uninterrupted video byte for byte."""
    args, reference, _ = request.getfixturevalue(job)
    n = {"video_job": 12, "two_segment_job": 16}[job]
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    out = tmp_path / "out.mp4"
    work = tmp_path / f".{out.name}.framestyle-work"
    kept: set[int] = set()
    points = [("after 1", {"KILL_AFTER_FRAMES": "1"}, 1),
              ("after n-1", {"KILL_AFTER_FRAMES": str(n - 2)}, n - 1),
              ("in the encode", {"KILL_IN_ENCODE": "1"}, n)]
    for point, env, total in points:
        process = start(["run", *args, "-o", out, "-p", killer], env)
        process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL, point
        assert not out.exists(), point  # nothing under the final name
        # A frame is kept before it is announced as finished (where two
        # segments overlap, as the earlier one's tail until the assembly).
        now = {int(p.stem.split("_")[1]) - 1 for part in ("frame", "tail") for p in work.glob(f"{part}_*.png")}
        assert now >= kept and len(now) == total, (point, sorted(now))
        kept = now

    # Every frame is kept: the last run only encodes them, here in-process
    # (a new process costs ~4 s of imports; nothing is computed that could differ).
    assert main(["run", *map(str, args), "-o", str(out)]) == 0
    assert out.read_bytes() == reference.read_bytes()
    frames = json.loads(out.with_name(out.name + ".report.json").read_text())["frames"]
    assert all(f["reused"] for f in frames) and len(frames) == n  # none redone, none lost
    assert not work.exists() and not list(tmp_path.glob(".*framestyle-partial"))


# Kills its own process (SIGKILL) once two inputs have ended, after every
# other observer of that end (the records) has seen it.
KILL_AFTER_TWO = '''
import os, signal
import framestyle

ended = 0

@framestyle.hookimpl(trylast=True)
def on_source_end(event):
    global ended
    ended += 1
    if ended == 2:
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_run_killed_before_its_manifest_keeps_its_records_in_the_journal(folder_job, tmp_path):
    """The manifest is written at the end; a run killed before it journaled
    each finished input's record as it ended, so the rerun skips those
    inputs and its manifest keeps their figures (not a bare 'skipped')."""
    args = folder_job[0]  # one photo after another: two end, the third has not started
    killer = tmp_path / "killer.py"
    killer.write_text(KILL_AFTER_TWO)
    out = tmp_path / "out"
    process = start(["run", *args, "-o", out, "-p", killer])
    process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "framestyle-run.json").exists()
    journaled = [json.loads(line) for line in (out / "framestyle-run.journal").read_text().splitlines()]
    assert [(Path(item["output"]).name, item["status"]) for item in journaled] == [("photo0.png", "done"),
                                                                                    ("photo1.png", "done")]

    code, err, _ = finish(["run", *args, "-o", out])
    assert code == 0, err
    assert (count(err, "skipped"), count(err, "done")) == (2, 4)
    items = json.loads((out / "framestyle-run.json").read_text())["items"]
    assert [item["status"] for item in items] == ["done"] * 6
    assert all(item["iterations"] > 0 for item in items)  # the killed run's figures, from its journal
    assert items[:2] == journaled and not (out / "framestyle-run.journal").exists()
