"""``--dry-run``'s estimate against the run it estimates, side by side."""

from __future__ import annotations

import re

import pytest
from helpers import SAMPLES, sample, save

import framestyle
from framestyle.host import PluginHost


class IterationCount:
    iterations = 0

    @framestyle.hookimpl
    def on_frame_end(self, event) -> None:
        self.iterations += event.iterations


def estimated(capsys, *args, **options) -> tuple[float, int]:
    """The dry run's estimate: (seconds, iterations)."""
    summary = framestyle.run(*args, dry_run=True, **options)
    printed = capsys.readouterr().out
    assert summary.exit_code == 0, printed
    found = re.search(r"estimate: about (?:(\d+) min )?([\d.]+) s for (\d+) iterations", printed)
    assert found, printed
    return 60 * int(found.group(1) or 0) + float(found.group(2)), int(found.group(3))


@pytest.mark.parametrize("case", ["folder", "video"])
def test_the_estimate_follows_the_real_run(case, tmp_path, weights, capsys):
    """Default layers and margin, a folder of a photo and a four-frame clip:
    the stop rule, the levels and the warm frames are all estimated. The
    iterations are the model's and must be within 2x of those run; the
    seconds also follow the machine's load (the suite's other workers),
    so they are held to what a wrong per-iteration timing would break: 4x.
    Alone, on 2 cores, the estimate is 1.1-1.2x the real time."""
    if case == "folder":
        save(tmp_path / "in" / "chelsea.png", sample("chelsea.jpg", 64))
        inputs, out, options = tmp_path / "in", tmp_path / "out", {"size": 48, "iterations": 40}
    else:
        inputs, out = SAMPLES / "video" / "bunny.mp4", tmp_path / "out.mp4"
        options = {"size": 48, "iterations": 40, "end": "4"}
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    seconds, iterations = estimated(capsys, inputs, style, out, weights=weights, **options)
    assert not out.exists()
    host, counted = PluginHost(autoload=False), IterationCount()
    host.register(counted, "count")
    real = framestyle.run(inputs, style, out, weights=weights, host=host, **options)
    assert real.exit_code == 0 and real.done
    ran = counted.iterations
    print(f"estimate {seconds:.1f} s, {iterations} iterations; real {real.seconds:.1f} s, {ran} iterations")
    assert 0.5 < iterations / ran < 2, (iterations, ran)
    assert 0.25 < seconds / real.seconds < 4, (seconds, real.seconds)
