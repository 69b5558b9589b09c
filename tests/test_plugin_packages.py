"""The example plugin packages under plugins/, installed for real (dev.py
installs them), discovered through their entry points and used from the CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable

import numpy as np
import pytest
from helpers import sample, save
from PIL import Image

from framestyle.cli import main
from framestyle.testing import tiny_video

PACKAGES = {"gif": "framestyle_gif", "colorstats": "framestyle_colorstats", "gifsource": "framestyle_gifsource",
            "farneback": "framestyle_farneback"}
missing = [module for module in PACKAGES.values() if importlib.util.find_spec(module) is None]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"example plugins not installed ({', '.join(missing)}): python3 dev.py test installs them")


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any run reads the cache."""


@pytest.fixture
def framestyle(monkeypatch, capsys) -> Callable[..., subprocess.CompletedProcess]:
    """The CLI as a user runs it, with the installed packages' entry points
    loaded (discovery reads the installed metadata, in this process as in a
    new one; a new one would cost ~4 s of imports)."""
    monkeypatch.delenv("FRAMESTYLE_DISABLE_PLUGIN_AUTOLOAD", raising=False)

    def run(*args: object) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_installed_plugins_are_listed_with_their_hooks(framestyle):
    listed = {p["name"]: p for p in json.loads(framestyle("plugins", "--json").stdout)}
    assert listed["gif"]["hooks"] == ["register_writers"] and listed["gif"]["distribution"] == "framestyle-gif"
    assert listed["colorstats"]["registers"] == {"losses": ["color-stats"]}
    assert listed["gifsource"]["registers"] == {"loaders": ["gif"]}
    assert listed["farneback"]["registers"] == {"flows": ["farneback"]}
    blocked = {p["name"]: p for p in json.loads(framestyle("plugins", "--json", "-p", "no:gif").stdout)}
    assert blocked["gif"]["blocked"] and blocked["gif"]["hooks"] == []


def test_gif_output_from_the_cli_and_blocking_it(framestyle, tmp_path):
    clip = tiny_video(tmp_path / "clip.avi", frames=3, fps=20)
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    args = ["run", clip, "--style", style, "--size", "48", "--iterations", "2", "--min-iterations", "1"]
    done = framestyle(*args, "-o", tmp_path / "out.gif")
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 50
    refused = framestyle(*args, "-o", tmp_path / "again.gif", "-p", "no:gif")
    assert refused.returncode == 2 and "no writer makes .gif files" in refused.stderr
    assert not (tmp_path / "again.gif").exists()


def test_plugin_loss_from_the_cli_changes_the_output(framestyle, tmp_path):
    content = save(tmp_path / "c.png", sample("chelsea.jpg", 48))
    style = save(tmp_path / "s.png", sample("swirls.jpg", 48))
    args = ["run", content, "--style", style, "--size", "48", "--iterations", "10"]
    assert framestyle(*args, "-o", tmp_path / "plain.png").returncode == 0
    assert framestyle(*args, "-o", tmp_path / "stats.png", "--loss", "color-stats=100").returncode == 0
    plain = np.asarray(Image.open(tmp_path / "plain.png"), dtype=float)
    stats = np.asarray(Image.open(tmp_path / "stats.png"), dtype=float)
    assert np.abs(plain - stats).mean() > 1.0


def test_gif_loader_frames_reach_the_writer(framestyle, tmp_path):
    from framestyle.testing import pattern

    frames = [Image.fromarray(pattern(i)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    style = save(tmp_path / "style.png", sample("swirls.jpg", 48))
    done = framestyle("run", gif, "--style", style, "-o", tmp_path / "frames", "--writer", "frames",
                      "--size", "48", "--iterations", "2", "--min-iterations", "1")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 3
