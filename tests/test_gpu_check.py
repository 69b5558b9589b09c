"""benchmarks/gpu_check.sh runs only where CUDA is; what can be checked
without it is checked here: the script refuses to run without a GPU, and
its parser reads framestyle's real output (a CPU bench table and a run's
log, made here, and the bench's video line) into the JSON it writes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import sample, save

from framestyle.bench import video_line
from framestyle.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_the_script_measures_nothing_and_says_so(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no CUDA device here" in result.stderr
    assert not list((tmp_path / "out").glob("*.txt"))


def test_the_parser_reads_framestyles_own_output(gpu_check, tmp_path, capsys, weights):
    assert main(["bench", "--size", "32", "--batch", "1,2", "--precision", "fp32", "--iterations", "1"]) == 0
    bench = capsys.readouterr().out
    # A video's timing costs a cold frame's 300 iterations: its line from the bench's own formatter.
    bench += video_line("clip.mp4", 16, "fp32", 1, 0.25, "1 frames, cold 300 it, warm 0.0 it on average") + "\n"
    save(tmp_path / "a.png", sample("chelsea.jpg", 24))
    assert main(["run", str(tmp_path / "a.png"), "--style", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                 "--size", "16", "--iterations", "1", "-v"]) == 0
    run_log = capsys.readouterr().err
    folder = tmp_path / "check"
    folder.mkdir()
    (folder / "bench.txt").write_text(bench)
    (folder / "bench.status").write_text("0\n")
    (folder / "auto.txt").write_text(run_log)
    # The lines of a GPU's out-of-memory halving and of the compile step, as they are printed there.
    (folder / "oom.txt").write_text("framestyle: warning: out of memory with 8 frame(s) in a batch; continuing with "
                                    "4 (finished frames are kept)\ndone: 8\nexit code: 0\n")
    (folder / "compile.txt").write_text("compile: eager 9.00 s, compiled first 40.00 s, compiled again 6.00 s "
                                        "(512 px, 100 iterations)\n")
    found = json.loads(json.dumps(gpu_check.collect(folder)))
    rows = {(row["precision"], row["batch"]): row for row in found["bench"]}
    assert set(rows) == {("fp32", 1), ("fp32", 2)}
    for (_, batch), row in rows.items():
        assert row["iterations_per_s"] == pytest.approx(1000 / row["ms_per_iteration"])
        assert row["images_per_s"] == pytest.approx(batch * row["iterations_per_s"], rel=0.02)
        assert 0 < row["fraction_of_peak"] <= 1.5
    assert found["device"].startswith("cpu")
    [video] = [v for v in found["video"] if v["batch"] == 1]
    assert video["clip"] == "clip.mp4" and video["size"] == 16 and video["frames_per_s"] > 0
    assert found["auto_batch"] == {"batch": 4, "device": "cpu"}
    assert found["oom_halvings"] == [[8, 4]] and found["results"] == {"oom: done": 8, "oom: exit code": 0}
    assert found["compile"]["speedup"] == pytest.approx(1.5)
    assert found["exit_status"] == {"bench": 0}
