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
