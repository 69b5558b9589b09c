"""The documentation: the site builds with no broken link, every command it
shows parses with today's options, and its Python examples run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SAMPLES

from framestyle.settings.options import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(language: str) -> list[tuple[Path, str]]:
    return [(page, body) for page in PAGES for lang, body in BLOCK.findall(page.read_text()) if lang == language]


def commands() -> list[tuple[Path, list[str]]]:
    """Every ``framestyle ...`` command in the pages' shell blocks, its
    continuation lines joined and its comment dropped."""
    found = []
    for page, body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["framestyle"]:
                found.append((page, words[1:]))
    return found


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    """``mkdocs build --strict``: a broken link, a missing anchor, a page
    left out of the navigation or a missing included file fails it."""
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    contributing = (tmp_path / "site" / "contributing" / "index.html").read_text()
    assert "Two kinds of CPU" in contributing  # CONTRIBUTING.md is included, not linked


def test_every_command_shown_parses() -> None:
    """An option renamed or removed fails here, naming the page."""
    parser = build_parser()
    shown = commands()
    assert len(shown) > 30
    for page, words in shown:
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{page.relative_to(ROOT)}: framestyle {shlex.join(words)} does not parse")


# Each example runs at a size a test affords: images at 32 px and a few
# iterations, a video's first three frames. What it exercises is every call,
# keyword and attribute the example names.
SMALL = """\
import framestyle.api as _api
_resolve = _api.resolve_settings
def _small(options, *rest):
    options = {**options, "size": 32, "iterations": 3, "scales": 1, "first_iterations": 3,
               "min_iterations": 1, "end": "3"}
    return _resolve(options, *rest)
_api.resolve_settings = _small
"""

CALL_TESTS = """
import inspect as _inspect, pathlib as _pathlib, tempfile as _tempfile
for _name, _test in list(globals().items()):
    if _name.startswith("test_") and callable(_test):
        _test(*[_pathlib.Path(_tempfile.mkdtemp())] * len(_inspect.signature(_test).parameters))
"""


def example_folder(folder: Path) -> None:
    """What the examples name: ``photo.jpg``, ``starry.jpg``, ``photos/``,
    ``my-paintings/``, ``clip.mp4`` and ``framestyle.toml``, from the samples."""
    shutil.copy(SAMPLES / "photos" / "chelsea.jpg", folder / "photo.jpg")
    shutil.copy(SAMPLES / "styles" / "swirls.jpg", folder / "starry.jpg")
    for name, sample in (("photos", "photos/coffee.jpg"), ("my-paintings", "styles/mosaic.jpg")):
        (folder / name).mkdir()
        shutil.copy(SAMPLES / sample, folder / name)
    shutil.copy(SAMPLES / "video" / "bunny.mp4", folder / "clip.mp4")
    (folder / "framestyle.toml").write_text('preset = "fast"\n')


PYTHON_PAGES = sorted({page for page, _ in blocks("python")})


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda page: page.name)
def test_python_examples_run(page: Path, tmp_path: Path) -> None:
    """A page's Python blocks, in order, in one folder: a block that starts
    with ``# NAME.py`` is that module (a plugin), which later blocks import;
    a block's ``test_*`` functions are called, as pytest would."""
    example_folder(tmp_path)
    ran = 0
    for code in [body for shown, body in blocks("python") if shown == page]:
        first = code.splitlines()[0]
        if re.fullmatch(r"# [\w]+\.py", first):
            (tmp_path / first[2:]).write_text(code)
            continue
        script = tmp_path / f"example_{ran}.py"
        script.write_text(SMALL + code + CALL_TESTS)
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, f"{page.relative_to(ROOT)}:\n{code}\n{done.stderr[-3000:]}"
        ran += 1
    assert ran


def test_the_configuration_example_is_read(tmp_path: Path) -> None:
    """The ``framestyle.toml`` shown in the configuration guide is one that
    framestyle reads, every key known."""
    from framestyle.settings.files import resolve

    shown = [body for page, body in blocks("toml") if body.startswith("# framestyle.toml")]
    assert shown
    for body in shown:
        (tmp_path / "framestyle.toml").write_text(body)
        settings, used = resolve({"inputs": ["photo.jpg"]}, tmp_path / "framestyle.toml", None)
        assert used is not None and settings.size == 384 and settings.losses.get("tv") == 0.001
