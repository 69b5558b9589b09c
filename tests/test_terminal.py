"""The progress display as a user sees it: framestyle run on a pseudo-terminal
(a bar, in colour unless NO_COLOR), on a dumb terminal and through a pipe
(one plain line per input)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from helpers import SHALLOW_ARGS

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-8]|9[0-7])[0-9;]*m")  # an SGR that sets a foreground colour
PLAIN_LINE = re.compile(r"cat\.jpg -> \S+cat\.png: \d+ iterations, [\d.]+ s, loss [\d.e+-]+")


def framestyle_on(photos: Path, tmp_path: Path, terminal: bool, *options: str, **env: str) -> str:
    """What ``framestyle run`` writes to the terminal (or pipe) it runs on."""
    args = [sys.executable, "-m", "framestyle", "run", str(photos / "cat.jpg"), "--style",
            str(tmp_path / "style.jpg"), "-o", str(tmp_path / "out" / "cat.png"), "--overwrite",
            "--size", "24", "--iterations", "3", *SHALLOW_ARGS, *options]
    environment = {**os.environ, "TERM": "xterm-256color", **env}
    if not terminal:
        done = subprocess.run(args, env=environment, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # wide: no wrapping
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(("env", "coloured"), [({}, True), ({"NO_COLOR": "1"}, False)])
def test_a_terminal_gets_a_bar(photos, tmp_path, weights, env, coloured):
    shown = framestyle_on(photos, tmp_path, terminal=True, **env)
    assert "job (frames)" in shown and "1/1 inputs" in shown
    assert bool(COLOUR.search(shown)) == coloured, repr(shown[-400:])
    assert not PLAIN_LINE.search(shown)


@pytest.mark.parametrize("terminal", [True, False], ids=["dumb terminal", "pipe"])
def test_a_dumb_terminal_or_a_pipe_gets_plain_lines(photos, tmp_path, weights, terminal):
    shown = framestyle_on(photos, tmp_path, terminal=terminal, TERM="dumb" if terminal else "xterm-256color")
    assert "job (frames)" not in shown and "\x1b[" not in shown
    assert len(PLAIN_LINE.findall(shown)) == 1, shown


def test_verbose_plain_lines_come_every_tenth_of_the_iterations(photos, tmp_path, weights):
    """-v through a pipe: a line at every tenth of the iterations and at the
    last, so a long run shows it is alive without a line per iteration."""
    # --min-iterations 25: all of them, whatever the loss does (the stop rule is not under test).
    shown = framestyle_on(photos, tmp_path, False,
                          "--iterations", "25", "--min-iterations", "25", "--scales", "1", "-v")
    steps = [int(n) for n in re.findall(r"cat\.jpg: iteration (\d+)/25: loss", shown)]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25], shown
    assert len(PLAIN_LINE.findall(shown)) == 1, shown


def coarse_to_fine_steps(path: Path, settings, width: int, height: int, budget: int):
    """The Steps a frame's coarse levels take, each with its level's pixels."""
    from framestyle.events import Step
    from framestyle.transfer.frame import pyramid, split_iterations

    margin = 2 * settings.margin
    levels = pyramid(height + margin, width + margin, settings.scales)
    shares = split_iterations(budget, len(levels), settings.final_share)
    done = 0
    for (h, w), share in list(zip(levels, shares, strict=True))[:-1]:
        for _ in range(share):
            done += 1
            yield Step(path, 0, done, budget, 1.0, {}, h * w)


def test_the_eta_weighs_iterations_by_their_pixels():
    """After a 256 px image's three coarse levels, 70% of its iterations,
    it has done about 40% of its work (levels √2 apart: 1/8, 1/4, 1/2 of the
    pixels): the ETA counts that, so it does not grow as the larger levels come."""
    from framestyle.builtin.progress import WorkMeter
    from framestyle.events import FrameStart
    from framestyle.settings import Settings

    settings = Settings(inputs=[], style=[], output=None)
    meter = WorkMeter(settings)
    photo = Path("photo.png")
    meter.start(FrameStart(photo, 0, 1, 256, 170, 300))
    steps = list(coarse_to_fine_steps(photo, settings, 256, 170, 300))
    for step in steps:
        meter.step(step)
    assert len(steps) == 210
    assert 0.33 < meter.in_flight() < 0.47, meter.in_flight()
    meter.start(FrameStart(photo, 1, 2, 256, 170, 300, warm=True))  # one level: iterations are work
    assert meter.frames[(photo, 1)][1] == 300 * (170 + 8) * (256 + 8)


def test_the_job_bar_moves_before_the_first_frame_ends(capsys):
    """The job's ETA comes from the first iterations on, not once an input ends."""
    from framestyle.builtin.progress import RichReporter
    from framestyle.events import FrameStart, RunEnd, RunStart, SourceStart
    from framestyle.settings import Settings
    from framestyle.types import SourceInfo

    settings = Settings(inputs=[], style=[], output=None)
    reporter = RichReporter(RunStart(settings, 2, "cpu", "weights", frames=2))
    photo = Path("photo.png")
    reporter.source_start(SourceStart(1, 2, photo, Path("out.png"), SourceInfo(photo, "image", 256, 170, 1)))
    reporter.frame_start(FrameStart(photo, 0, 1, 256, 170, 300))
    for step in coarse_to_fine_steps(photo, settings, 256, 170, 300):
        reporter.step(step)
    job = reporter.progress.tasks[reporter.job]
    reporter.run_end(RunEnd(0, 0, [], True, 1.0, 130))
    assert 0.33 < job.completed < 0.47 and job.total == 2
