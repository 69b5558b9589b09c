"""``--dry-run``'s estimate against the run it estimates, side by side."""

from __future__ import annotations

import re

import pytest
from helpers import SAMPLES, sample, save

import framestyle


def estimated_seconds(capsys, *args, **options) -> float:
    summary = framestyle.run(*args, dry_run=True, **options)
    printed = capsys.readouterr().out
    assert summary.exit_code == 0, printed
    found = re.search(r"estimate: about (?:(\d+) min )?([\d.]+) s", printed)
    assert found, printed
    return 60 * int(found.group(1) or 0) + float(found.group(2))


@pytest.mark.parametrize("case", ["folder", "video"])
def test_the_estimate_is_within_twice_the_real_time(case, tmp_path, weights, capsys):
    """Default layers and margin, a folder of a photo and a four-frame clip:
    the stop rule, the levels and the warm frames are all estimated. (A batch
    of small images side by side runs up to 1.5x faster than the frame
    timed alone: the estimate errs high there.)"""
    if case == "folder":
        save(tmp_path / "in" / "chelsea.png", sample("chelsea.jpg", 64))
        inputs, out, options = tmp_path / "in", tmp_path / "out", {"size": 48, "iterations": 40}
    else:
        inputs, out = SAMPLES / "video" / "bunny.mp4", tmp_path / "out.mp4"
        options = {"size": 48, "iterations": 40, "end": "4"}
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    estimate = estimated_seconds(capsys, inputs, style, out, weights=weights, **options)
    assert not out.exists()
    real = framestyle.run(inputs, style, out, weights=weights, **options)
    assert real.exit_code == 0 and real.done
    print(f"estimate {estimate:.1f} s, real {real.seconds:.1f} s")
    assert 0.5 < estimate / real.seconds < 2, (estimate, real.seconds)
