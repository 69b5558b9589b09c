"""The command line over real folders: outputs, failures, resume, exit codes."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from helpers import SHALLOW, SHALLOW_ARGS, outputs, sample, save
from PIL import Image

import framestyle
from framestyle.cli import main

FAST = ["--size", "32", "--iterations", "3", *SHALLOW_ARGS]


@pytest.fixture(autouse=True)
def real_weights(weights):
    """Convert the weights once before any CLI test reads the cache."""


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_with_a_corrupt_file_writes_the_rest_and_exits_1(photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (photos / "notes.txt").write_text("not an image")
    out_dir = tmp_path / "out"
    code, stdout, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out_dir, *FAST)
    assert code == 1
    written = outputs(out_dir)
    assert written == ["cat.png", "space/rocket.png"]  # layout mirrored, broken one absent
    errors = [line for line in err.splitlines() if line.startswith("framestyle: error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0] and "\n" not in errors[0]
    assert "failed: " in err and "2 done" in err
    assert "1 file(s) that are not images" in err
    assert stdout == ""  # logs and progress go to stderr
    width, height = Image.open(photos / "space" / "rocket.png").size
    assert width == 40 and Image.open(out_dir / "space" / "rocket.png").size == (32, round(height * 32 / 40))


def test_rerun_skips_finished_outputs_and_overwrite_redoes_them(photos, tmp_path, capsys):
    args = ["run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "out", *FAST]
    assert run(capsys, *args)[0] == 0
    cat = tmp_path / "out" / "cat.png"
    os.utime(cat, (1_000_000, 1_000_000))
    code, _, err = run(capsys, *args)
    assert code == 0 and "2 skipped" in err and "0 done" in err
    assert cat.stat().st_mtime == 1_000_000  # untouched
    code, _, err = run(capsys, *args, "--overwrite")
    assert code == 0 and "2 done" in err
    assert cat.stat().st_mtime > 1_000_000


def test_a_changed_setting_redoes_the_outputs_it_changes(photos, tmp_path, capsys):
    """A rerun that asks for another result makes it, rather than skip the
    old one as complete; what does not change a result (--report, -v) skips."""
    args = ["run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "out", *FAST]
    assert run(capsys, *args)[0] == 0
    cat = tmp_path / "out" / "cat.png"
    before = cat.read_bytes()
    code, _, err = run(capsys, *args, "--report", "-v")
    assert code == 0 and "2 skipped" in err and "0 done" in err
    code, _, err = run(capsys, *args, "--style-weight", "50")
    assert code == 0 and "2 done (2 redone: made with other settings)" in err
    assert "cat.png: made with other settings" in err
    assert cat.read_bytes() != before
    code, _, err = run(capsys, *args, "--style-weight", "50")
    assert code == 0 and "2 skipped" in err  # the records now say what it was made with


def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST, "--dry-run")
    assert code == 0 and not out.exists()
    assert "2 input(s), 2 frame(s)" in stdout and "cat.jpg" in stdout and "rocket.png" in stdout
    assert re.search(r"\d+x\d+ \(levels \d+x\d+\)", stdout) and "executor local" in stdout
    assert re.search(r"estimate: about [\d.]+ s for \d+ iterations \(timed on cpu at \d+ size", stdout), stdout


def test_damaged_output_is_redone_not_skipped(photos, tmp_path, capsys):
    args = ["run", photos / "cat.jpg", "--style", tmp_path / "style.jpg", "-o", tmp_path / "out", *FAST]
    assert run(capsys, *args)[0] == 0
    out = tmp_path / "out" / "cat.png"
    out.write_bytes(out.read_bytes()[:50])  # e.g. cut short by a crash of another tool
    code, _, err = run(capsys, *args)
    assert code == 0 and "1 done" in err
    Image.open(out).load()


def test_single_file_output_and_formats(photos, tmp_path, capsys):
    style = tmp_path / "style.jpg"
    code, _, _ = run(capsys, "run", photos / "cat.jpg", "--style", style, "-o", tmp_path / "cat.webp", *FAST)
    assert code == 0 and Image.open(tmp_path / "cat.webp").format == "WEBP"
    code, _, _ = run(capsys, "run", photos, "--style", style, "-o", tmp_path / "jpgs", "--format", "jpg", *FAST)
    assert code == 0 and sorted(p.name for p in (tmp_path / "jpgs").rglob("*.jpg")) == ["cat.jpg", "rocket.jpg"]


def test_never_writes_over_an_input(photos, tmp_path, capsys):
    style = tmp_path / "style.jpg"
    save(photos / "space" / "moon.jpg", sample("astronaut.jpg", 32))
    save(photos / "space" / "moon.png", sample("astronaut.jpg", 32))  # moon.jpg's output name
    before = (photos / "space" / "moon.png").read_bytes()
    code, _, err = run(capsys, "run", photos / "space", "--style", style, "-o", photos / "space", *FAST)
    assert code == 2 and "input folder itself" in err
    code, _, err = run(capsys, "run", photos / "space" / "moon.png", photos / "cat.jpg", "--style", style,
                       "-o", photos / "space", *FAST)
    assert code == 1 and "moon.png would replace an input" in err
    assert (photos / "space" / "cat.png").is_file()  # the other input was still done
    code, _, err = run(capsys, "run", photos / "cat.jpg", "--style", style, "-o", photos / "cat.jpg", *FAST)
    assert code == 1 and "would replace an input" in err
    assert (photos / "space" / "moon.png").read_bytes() == before


def test_names_that_differ_only_in_extension_keep_it(photos, tmp_path, capsys):
    save(photos / "space" / "moon.jpg", sample("astronaut.jpg", 32))
    save(photos / "space" / "moon.png", sample("astronaut.jpg", 32))
    code, _, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "o", *FAST)
    assert code == 0
    assert outputs(tmp_path / "o" / "space") == [
        "moon.jpg.png", "moon.png.png", "rocket.png"]


def test_output_folder_inside_the_input_is_not_read_back(photos, tmp_path, capsys):
    args = ["run", photos, "--style", tmp_path / "style.jpg", "-o", photos / "styled", *FAST]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 0 and "2 skipped" in err  # not 4 inputs: its own outputs are not inputs
    assert not (photos / "styled" / "styled").exists()


def test_missing_input_among_others(photos, tmp_path, capsys):
    code, _, err = run(capsys, "run", tmp_path / "nope.jpg", photos / "cat.jpg",
                       "--style", tmp_path / "style.jpg", "-o", tmp_path / "out", *FAST)
    assert code == 1 and "nope.jpg: no such file" in err
    assert (tmp_path / "out" / "cat.png").is_file()


@pytest.mark.parametrize("args,expected", [
    (["--optimizer", "lbgfs"], "did you mean 'lbfgs'"),
    (["--loss", "colour=1"], "unknown loss 'colour'"),
    (["--device", "cuda:7"], "--device cuda:7"),
    (["--content-layer", "conv4_9"], "did you mean"),
    (["--format", "xyz"], "no writer makes .xyz files"),
])
def test_usage_errors_exit_2_with_one_line(photos, tmp_path, capsys, args, expected):
    code, _, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "o",
                       *FAST, *args)
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_style_image_is_a_usage_error(photos, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    code, _, err = run(capsys, "run", photos, "--style", bad, "-o", tmp_path / "o", *FAST)
    assert code == 2 and "style image" in err and "empty file" in err


def test_interrupt_keeps_finished_outputs_and_leaves_no_partial_file(photos, tmp_path, capsys):
    plugin = tmp_path / "ctrlc.py"
    plugin.write_text(
        "import framestyle\nframes = []\n"
        "@framestyle.hookimpl\ndef on_frame_start(event):\n"
        "    frames.append(event)\n"
        "    if len(frames) == 2:\n        raise KeyboardInterrupt\n"
    )
    out = tmp_path / "out"
    code, _, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST, "-p", plugin,
                       "--batch-size", "1")  # one input after the other
    assert code == 130 and "interrupted" in err
    assert outputs(out) == ["cat.png"]
    Image.open(out / "cat.png").load()
    code, _, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", out, *FAST)
    assert code == 0 and "1 skipped" in err and "1 done" in err


def test_quiet_prints_nothing_on_success(photos, tmp_path, capsys):
    code, out, err = run(capsys, "run", photos, "--style", tmp_path / "style.jpg", "-o", tmp_path / "o",
                         *FAST, "-q")
    assert code == 0 and out == "" and err == ""


def test_verbose_reports_iterations(photos, tmp_path, capsys):
    code, _, err = run(capsys, "run", photos / "cat.jpg", "--style", tmp_path / "style.jpg",
                       "-o", tmp_path / "o", "--size", "32", "--iterations", "20", "-v")
    assert code == 0
    assert "iteration 10/20" in err and "iteration 20/20" in err


def test_version_and_help(capsys, weights):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"framestyle {framestyle.__version__}")
    plugins = "plugins: images, video, losses, optimizers, stylize, executors, progress"
    for word in ("torch", "OpenCV", "device:", plugins):
        assert word in out
    assert f"weights: {weights.source}, sha256 {weights.digest[:16]}" in out.splitlines()
    for command in (["run"], ["plugins"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "examples:" in capsys.readouterr().out


# (option, its value on the command line, in a config file, from Python; the one line refusing it)
CHECKED = [
    ("--init", "missing.png", '"missing.png"', "missing.png",
     "--init missing.png: not 'content', 'noise' or an image file"),
    ("--warm-from", None, '"previous"', "previous", "--warm-from previous: choose frame, change"),
    ("--padding", None, '"mirror"', "mirror", "--padding mirror: choose zero, reflect, replicate"),
    ("--style-scale", "9", "9.0", 9.0, "--style-scale 9.0: must be between 0.1 and 4"),
    ("--style-weights", "0,0", "[0, 0]", [0.0, 0.0], "--style-weights must be non-negative numbers, not all zero"),
    ("--tile", None, '"huge"', "huge", "--tile huge: use auto, off or a tile side in pixels (at least 64)"),
]


@pytest.mark.parametrize("margin", [-1, 65])
def test_a_margin_out_of_range_is_refused_before_any_work(photos, tmp_path, margin):
    with pytest.raises(framestyle.errors.UsageError, match=rf"^--margin {margin}: must be from 0 to 64 pixels$"):
        framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "o", size=32, margin=margin)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("option", "typed", "in_file", "in_python", "message"), CHECKED,
                         ids=[case[0] for case in CHECKED])
def test_a_bad_setting_gets_the_same_line_from_the_cli_a_config_file_and_python(
        photos, tmp_path, capsys, monkeypatch, option, typed, in_file, in_python, message):
    monkeypatch.chdir(tmp_path)  # a relative --init is looked for here
    style, out = tmp_path / "style.jpg", tmp_path / "o"
    if typed is not None:  # options with fixed choices are refused by the parser itself
        code, _, err = run(capsys, "run", photos, "--style", style, "-o", out, *FAST, option, typed)
        assert code == 2 and err.strip() == f"framestyle: error: {message}"
    key = option.removeprefix("--").replace("-", "_")
    (tmp_path / "framestyle.toml").write_text(f"{key} = {in_file}\n")
    code, _, err = run(capsys, "run", photos, "--style", style, "-o", out, *FAST)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and errors[0].endswith(message)  # a file's value: the file named first
    with pytest.raises(framestyle.errors.UsageError) as raised:
        framestyle.run(photos, style, out, size=32, **{key: in_python})
    assert str(raised.value) == message
    assert not out.exists()


def test_api_run_matches_the_cli(photos, tmp_path):
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "api", size=32, iterations=3, **SHALLOW)
    assert summary.exit_code == 0 and summary.done == 2
    cli_dir = tmp_path / "cli"
    assert main(["run", str(photos), "--style", str(tmp_path / "style.jpg"), "-o", str(cli_dir), *FAST]) == 0
    for name in ("cat.png", "space/rocket.png"):
        a = np.asarray(Image.open(tmp_path / "api" / name))
        b = np.asarray(Image.open(cli_dir / name))
        assert np.array_equal(a, b)  # same settings, same seed: the same pixels


def test_tiny_inputs_and_a_tiny_style_work(tmp_path, capsys):
    icon = save(tmp_path / "in" / "icon.png", sample("coffee.jpg", 12))
    style = save(tmp_path / "dot.png", sample("swirls.jpg", 5))
    code, _, err = run(capsys, "run", tmp_path / "in", "--style", style, "-o", tmp_path / "out",
                       "--size", "64", "--iterations", "2")
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "icon.png").size == Image.open(icon).size  # never enlarged


def test_sigterm_stops_cleanly_keeping_finished_outputs(photos, tmp_path, capsys):
    """A real process killed with SIGTERM while on its second input: exit
    130, the first output intact, nothing partial left; a rerun does only
    the rest."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-m", "framestyle", "run", str(photos), "--style", str(tmp_path / "style.jpg"),
               "-o", str(out), "--size", "32", "--iterations", "60", "--batch-size", "1"]  # one photo, then the other
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith("framestyle: [1/2]"):  # the first output is complete
            process.send_signal(signal.SIGTERM)
            break
    assert process.wait(timeout=60) == 130
    assert "interrupted" in process.stderr.read()
    assert outputs(out) == ["cat.png"]  # no partial file either
    Image.open(out / "cat.png").load()
    assert main(command[3:]) == 0  # the rerun, in-process: no signal to send it
    assert "1 done, 1 skipped" in capsys.readouterr().err


def test_an_output_file_of_unknown_type_is_a_usage_error_not_a_folder(photos, tmp_path, capsys):
    code, _, err = run(capsys, "run", photos / "cat.jpg", "--style", tmp_path / "style.jpg",
                       "-o", tmp_path / "cat.xyz", *FAST)
    assert code == 2 and "no writer makes .xyz files" in err
    assert not (tmp_path / "cat.xyz").exists()
