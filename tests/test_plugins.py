"""The plugin host: entry points, blocking, failures, overrides and listing."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from collections import defaultdict

import numpy as np
import pytest
import torch
from helpers import sample, save
from PIL import Image

import framestyle
import framestyle.events
import framestyle.host
import framestyle.types
from framestyle.api import as_rgb8
from framestyle.cli import main
from framestyle.errors import PluginError, UsageError
from framestyle.host import PluginHost
from framestyle.types import LossSpec, StylizeResult


class FakeEntryPoint:
    def __init__(self, name: str, module: str) -> None:
        self.name, self.value, self.group = name, module, "framestyle"

    def load(self):
        return importlib.import_module(self.value)


class FakeDistribution:
    def __init__(self, name: str, entry_points: list[FakeEntryPoint]) -> None:
        self.metadata = {"Name": name}
        self.version = "1.2.3"
        self.entry_points = entry_points


def install_module(monkeypatch, name: str, source: str) -> None:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def fake_distributions(monkeypatch):
    """Two installed plugin distributions: one good, one that fails to import."""
    install_module(monkeypatch, "fs_brightness", '''
import framestyle
from framestyle.types import LossSpec

class Brightness:
    layers = ()
    def __init__(self, target):
        self.target = target
    def __call__(self, image, features):
        return (image.mean() - self.target) ** 2

@framestyle.hookimpl
def register_losses(register):
    register(LossSpec("brightness", lambda job: Brightness(0.9), 0.0, "push the mean towards 0.9"))
''')
    dists = [
        FakeDistribution("framestyle-brightness", [FakeEntryPoint("brightness", "fs_brightness")]),
        FakeDistribution("framestyle-broken", [FakeEntryPoint("broken", "fs_module_that_does_not_exist")]),
    ]
    monkeypatch.setattr(framestyle.host, "installed_distributions", lambda: dists)
    monkeypatch.delenv("FRAMESTYLE_DISABLE_PLUGIN_AUTOLOAD")
    return dists


def test_entry_points_load_and_a_broken_one_is_skipped_with_a_warning(fake_distributions, capsys):
    assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    listed = {p["name"]: p for p in json.loads(captured.out)}
    assert listed["brightness"]["distribution"] == "framestyle-brightness"
    assert listed["brightness"]["hooks"] == ["register_losses"]
    assert listed["brightness"]["registers"] == {"losses": ["brightness"]}
    assert listed["broken"]["error"].startswith("ModuleNotFoundError")
    warning = [line for line in captured.err.splitlines() if "broken" in line]
    assert len(warning) == 1 and "framestyle-broken 1.2.3" in warning[0] and "skipped" in warning[0]
    assert "images" not in listed  # built-ins only with --all


def test_strict_setting_makes_a_broken_plugin_fatal(fake_distributions, monkeypatch, capsys):
    monkeypatch.setenv("FRAMESTYLE_STRICT_PLUGINS", "1")
    assert main(["plugins"]) == 3
    assert "framestyle: error: plugin 'broken' from framestyle-broken 1.2.3 failed to load" in capsys.readouterr().err


def test_block_with_p_no(fake_distributions, capsys):
    assert main(["plugins", "--all", "--json", "-p", "no:broken", "-p", "no:progress"]) == 0
    captured = capsys.readouterr()
    listed = {p["name"]: p for p in json.loads(captured.out)}
    assert listed["broken"]["blocked"] and listed["broken"]["error"] is None
    assert listed["progress"]["blocked"] and listed["progress"]["hooks"] == []
    assert listed["stylize"]["hooks"] == ["init_image", "stylize"]
    assert captured.err == ""  # a blocked plugin is not even imported


def test_plugin_loss_by_name_changes_the_output(fake_distributions, photos, tmp_path, weights, capsys):
    args = ["run", str(photos / "cat.jpg"), "--style", str(tmp_path / "style.jpg"),
            "--size", "32", "--iterations", "10"]
    assert main([*args, "-o", str(tmp_path / "plain.png")]) == 0
    assert main([*args, "-o", str(tmp_path / "bright.png"), "--loss", "brightness=200"]) == 0
    plain = np.asarray(as_rgb8(tmp_path / "plain.png"), dtype=float) / 255
    bright = np.asarray(as_rgb8(tmp_path / "bright.png"), dtype=float) / 255
    assert abs(bright.mean() - 0.9) < abs(plain.mean() - 0.9) - 0.1


def test_a_plugin_overrides_stylize_and_a_wrapper_sees_the_result(weights):
    calls = []

    class Invert:
        @framestyle.hookimpl
        def stylize(self, job, init):
            calls.append("invert")
            return StylizeResult(1 - job.content, 0, 0.0, {})

    class Watch:
        @framestyle.hookimpl(wrapper=True)
        def stylize(self, job, init):
            calls.append("before")
            result = yield
            calls.append(f"after:{type(result).__name__}")
            return result

    host = PluginHost(autoload=False)
    host.register(Invert(), "invert")
    host.register(Watch(), "watch")
    content = sample("chelsea.jpg", 48)  # 48x32: optimised as it is, not enlarged
    out = framestyle.stylize(content, content, size=48, iterations=50, host=host, weights=weights)
    assert calls == ["before", "invert", "after:StylizeResult"]
    assert np.abs(out.astype(int) - (255 - content.astype(int))).max() <= 1  # built-in never ran


def test_a_stylize_that_passes_leaves_the_frames_to_the_batch(photos, tmp_path, weights):
    """A plugin's stylize that returns None for a frame hands it on, as
    pluggy's first result rule says: the built-in then optimises it with the
    other frames in flight (a step of each before either goes on)."""
    passed: list[str] = []
    steps: list[str] = []

    class Passes:
        @framestyle.hookimpl
        def stylize(self, job, init):
            passed.append(job.source.path.name)

        @framestyle.hookimpl
        def on_step(self, event):
            steps.append(event.path.name)

    save(photos / "space" / "rocket.png", sample("chelsea.jpg", 40))  # both 40x26: one working size
    host = PluginHost(autoload=False)
    host.register(Passes(), "passes")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=40, iterations=4, scales=1,
                             batch_size=2, host=host, weights=weights)
    assert summary.exit_code == 0 and sorted(passed) == ["cat.jpg", "rocket.png"]
    assert steps[0] != steps[1] and len(steps) == 8


def test_an_interrupted_batch_unwinds_every_stylize_call(photos, tmp_path, weights):
    """Ctrl-C in the middle of a batch: each frame's stylize wrapper sees
    the call end (no result), and no call is left waiting on a thread."""
    import threading

    unwound: list[str] = []

    class Watch:
        @framestyle.hookimpl(wrapper=True)
        def stylize(self, job, init):
            try:
                return (yield)
            except BaseException:
                unwound.append(job.source.path.name)
                raise

        @framestyle.hookimpl
        def on_step(self, event):
            if event.iteration == 2:
                raise KeyboardInterrupt

    save(photos / "space" / "rocket.png", sample("chelsea.jpg", 40))
    host = PluginHost(autoload=False)
    host.register(Watch(), "watch")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=40, iterations=4, scales=1,
                             batch_size=2, host=host, weights=weights)
    assert summary.interrupted and sorted(unwound) == ["cat.jpg", "rocket.png"]
    for thread in threading.enumerate():
        if thread.name.startswith("framestyle-stylize"):
            thread.join(timeout=5)
            assert not thread.is_alive(), thread.name


def test_the_records_are_an_observer_plugin_that_can_be_blocked(photos, tmp_path, weights):
    """The manifest, settings and reports come from a plugin watching the
    run's events, not from the driver: block it and they are not written,
    while the outputs are."""
    kept = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "kept", size=32, iterations=2,
                          host=PluginHost(autoload=False), weights=weights)
    blocked = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "blocked", size=32, iterations=2,
                             host=PluginHost(["no:records"], autoload=False), weights=weights)
    assert kept.exit_code == blocked.exit_code == 0
    assert (tmp_path / "kept" / "framestyle-run.json").is_file()
    assert (tmp_path / "blocked" / "cat.png").is_file() and not (tmp_path / "blocked" / "framestyle-run.json").exists()
    manifest = json.loads((tmp_path / "kept" / "framestyle-run.json").read_text())
    assert sorted((item["status"], item["kind"]) for item in manifest["items"]) == [("done", "image")] * 2


def test_duplicate_names_are_a_plugin_error(host):
    class Clash:
        @framestyle.hookimpl
        def register_losses(self, register):
            register(LossSpec("style", lambda job: None))

    host.register(Clash(), "clash")
    with pytest.raises(PluginError, match="'style' is registered by both 'losses' and 'clash'"):
        host.hooks.losses()


def test_a_plugin_that_raises_while_registering_is_named(host):
    class Bad:
        @framestyle.hookimpl
        def register_writers(self, register):
            raise RuntimeError("boom")

    host.register(Bad(), "bad")
    with pytest.raises(PluginError, match="plugin 'bad' failed in register_writers: boom"):
        host.hooks.writers()


def test_unknown_hook_name_in_a_plugin_is_refused(tmp_path, capsys):
    plugin = tmp_path / "typo.py"
    plugin.write_text("import framestyle\n@framestyle.hookimpl\ndef on_stepp(event):\n    pass\n")
    assert main(["plugins", "-p", str(plugin)]) == 3
    assert "on_stepp" in capsys.readouterr().err


def test_p_loads_a_module_for_one_run(monkeypatch, capsys):
    install_module(monkeypatch, "fs_extra_optimizer", '''
import torch, framestyle
from framestyle.types import OptimizerSpec

@framestyle.hookimpl
def register_optimizers(register):
    register(OptimizerSpec("sgd", lambda params, settings: torch.optim.SGD(params, lr=0.1)))
''')
    assert main(["plugins", "-p", "fs_extra_optimizer"]) == 0
    out = capsys.readouterr().out
    assert "fs_extra_optimizer (option" in out and "optimizers: sgd" in out
    with pytest.raises(UsageError, match="did you mean 'sgd'"):
        PluginHost(["fs_extra_optimizer"]).hooks.optimizers().get("sgdd")


def test_fresh_host_per_run_keeps_plugins_apart():
    first = PluginHost(autoload=False)

    class Extra:
        @framestyle.hookimpl
        def register_losses(self, register):
            register(LossSpec("extra", lambda job: None))

    first.register(Extra(), "extra")
    assert "extra" in first.hooks.losses()
    assert "extra" not in PluginHost(autoload=False).hooks.losses()


def test_init_image_plugin_sets_the_start(weights):
    class Grey:
        @framestyle.hookimpl
        def init_image(self, job):
            return torch.full_like(job.content, 0.5)

    host = PluginHost(autoload=False)
    host.register(Grey(), "grey")
    content = sample("chelsea.jpg", 32)
    out = framestyle.stylize(content, content, size=32, iterations=0, host=host, weights=weights)
    assert np.all(out == 128)


def test_events_carry_what_they_promise(photos, tmp_path, weights):
    seen: dict[str, list] = defaultdict(list)

    class Observer:
        @framestyle.hookimpl
        def on_run_start(self, event):
            seen["on_run_start"].append(event)

        @framestyle.hookimpl
        def on_source_start(self, event):
            seen["on_source_start"].append(event)

        @framestyle.hookimpl
        def on_frame_start(self, event):
            seen["on_frame_start"].append(event)

        @framestyle.hookimpl
        def on_step(self, event):
            seen["on_step"].append(event)

        @framestyle.hookimpl
        def on_frame_end(self, event):
            seen["on_frame_end"].append(event)

        @framestyle.hookimpl
        def on_source_end(self, event):
            seen["on_source_end"].append(event)

        @framestyle.hookimpl
        def on_run_end(self, event):
            seen["on_run_end"].append(event)

    observer = Observer()
    host = PluginHost(autoload=False)
    host.register(observer, "observer")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=24, iterations=4,
                             batch_size=1, host=host, weights=weights)  # one input after the other
    (start,) = seen["on_run_start"]
    from framestyle.engine.device import resolve_device

    assert start.total_items == 2 and start.device == str(resolve_device("auto")) and "Oxford" in start.weights
    assert [e.info.kind for e in seen["on_source_start"]] == ["image", "image"]
    assert all(e.iterations == 4 for e in seen["on_frame_start"])
    assert len(seen["on_step"]) == 8 and [e.iteration for e in seen["on_step"][:4]] == [1, 2, 3, 4]
    for frame, end in enumerate(seen["on_frame_end"]):
        steps = seen["on_step"][4 * frame: 4 * frame + 4]
        assert end.iterations == 4 and end.seconds > 0
        assert end.loss == pytest.approx(min(s.loss for s in steps))  # the best image is the one written
        assert set(end.losses) == {"content", "style"}
    assert [e.status for e in seen["on_source_end"]] == ["done", "done"]
    assert seen["on_run_end"] == [summary] and summary.done == 2 and summary.exit_code == 0


def test_loader_plugin_claims_new_extensions_in_folders_and_may_decline(photos, tmp_path, weights):
    from framestyle.types import LoaderSpec, SourceInfo

    class FlatSource:
        def __init__(self, path):
            self.info = SourceInfo(path, "image", 20, 10, frame_count=1)

        def frames(self):
            yield np.full((10, 20, 3), 200, np.uint8)

        def close(self):
            pass

    tried = []

    class Flat:
        @framestyle.hookimpl
        def register_loaders(self, register):
            def open_flat(path):
                tried.append(path.name)
                return None if path.name == "cat.jpg" else FlatSource(path)  # decline the cat
            register(LoaderSpec("flat", (".jpg", ".flat"), open_flat, priority=10))

    (photos / "plain.flat").write_bytes(b"anything")
    host = PluginHost(autoload=False)
    host.register(Flat(), "flat")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=24, iterations=1,
                             batch_size=1, host=host, weights=weights)  # in the folder's order
    assert summary.done == 3 and tried == ["cat.jpg", "plain.flat"]  # rocket.png is not its extension
    assert Image.open(tmp_path / "out" / "plain.png").size == (20, 10)  # made by the plugin's source
    assert Image.open(tmp_path / "out" / "cat.png").size[0] == 24  # the built-in loader took over


def test_a_plugin_raising_in_a_hook_fails_that_input_only(photos, tmp_path, weights, capsys):
    class Fragile:
        @framestyle.hookimpl
        def on_frame_end(self, event):
            if event.path.name == "cat.jpg":
                raise ValueError("cannot handle cats")

    host = PluginHost(autoload=False)
    host.register(Fragile(), "fragile")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=24, iterations=1,
                             host=host, weights=weights)
    assert summary.exit_code == 1 and summary.done == 1
    ((path, message),) = summary.failed
    assert path.name == "cat.jpg"
    assert message == "plugin 'fragile' failed in on_frame_end: ValueError: cannot handle cats"
    assert (tmp_path / "out" / "space" / "rocket.png").is_file()


FRAGILE = """
import framestyle

@framestyle.hookimpl
def on_frame_end(event):
    if event.path.name == "cat.jpg":
        raise ValueError("cannot handle cats")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_a_plugins_error_is_one_line_and_its_traceback_comes_with_v(photos, tmp_path, weights, capsys, verbose):
    plugin = tmp_path / "fragile.py"
    plugin.write_text(FRAGILE)
    args = ["run", str(photos / "cat.jpg"), "--style", str(tmp_path / "style.jpg"), "-o", str(tmp_path / "out"),
            "--size", "24", "--iterations", "1", "-p", str(plugin), *(["-v"] if verbose else [])]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "plugin 'fragile' failed in on_frame_end: ValueError: cannot handle cats" in err
    if verbose:  # where it was raised, in the plugin's own file
        assert "Traceback (most recent call last)" in err and f'File "{plugin}", line 7, in on_frame_end' in err
    else:
        assert "Traceback" not in err


def test_hook_calls_can_be_traced(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRAMESTYLE_TRACE_HOOKS", "1")
    assert main(["plugins", "--all"]) == 0
    host = PluginHost(autoload=False)
    host.hooks.on_run_end(framestyle.events.RunEnd(3, 1, [], False, 2.5, 0))
    err = capsys.readouterr().err
    call = err.index("framestyle: trace:   on_run_end [hook]")  # each call: its arguments, then its end
    arguments = err.index("event: RunEnd(done=3, skipped=1, failed=[], interrupted=False, seconds=2.5", call)
    assert call < arguments < err.index("framestyle: trace:   finish on_run_end --> []", call)


def test_hooks_taken_before_a_register_see_the_new_plugin():
    host = PluginHost(autoload=False)
    hooks = host.hooks  # held by a runtime built before the registration
    assert "extra" not in hooks.losses()

    class Extra:
        @framestyle.hookimpl
        def register_losses(self, register):
            register(LossSpec("extra", lambda job: None))

    host.register(Extra(), "extra")
    assert "extra" in hooks.losses()
    host.unregister("extra")
    assert "extra" not in hooks.losses()


def test_blocking_the_built_in_optimisation_is_refused_in_one_line(photos, tmp_path, capsys):
    from framestyle.cli import main

    code = main(["run", str(photos), "--style", str(tmp_path / "style.jpg"), "-o", str(tmp_path / "out"),
                 "--size", "32", "--iterations", "1", "-p", "no:stylize"])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "stylize" in errors[0] and "cannot be blocked" in errors[0], err
    assert "one at a time" not in err and not (tmp_path / "out").exists()


def test_a_stylize_wrapper_keeps_frames_batched_and_sees_each_result(photos, tmp_path, weights):
    """Two images of one size go through the batch together (their steps
    interleave); the wrapper's code before and after runs for each frame,
    and what it returns is what is written."""
    order: list[tuple[str, int]] = []

    class Brighten:
        @framestyle.hookimpl(wrapper=True)
        def stylize(self, job, init):
            order.append(("before", job.source.path.name))
            result = yield
            order.append(("after", job.source.path.name))
            return StylizeResult(torch.ones_like(result.image), result.iterations, result.loss, result.losses)

        @framestyle.hookimpl
        def on_step(self, event):
            order.append(("step", event.path.name))

    save(photos / "space" / "rocket.png", sample("chelsea.jpg", 40))  # both 40x26: one working size
    host = PluginHost(autoload=False)
    host.register(Brighten(), "brighten")
    summary = framestyle.run(photos, tmp_path / "style.jpg", tmp_path / "out", size=40, iterations=4, scales=1,
                             batch_size=2, host=host, weights=weights)
    assert summary.exit_code == 0
    names = [name for kind, name in order if kind == "step"]
    assert names[0] != names[1]  # a step of each before either goes on: one batch
    for name in ("cat.jpg", "rocket.png"):
        mine = [kind for kind, n in order if n == name]
        assert mine[0] == "before" and mine[-1] == "after" and mine.count("step") == 4
    for written in (tmp_path / "out" / "cat.png", tmp_path / "out" / "space" / "rocket.png"):
        assert np.asarray(Image.open(written)).min() == 255
