"""The order of hook calls over a tiny run is the one hookspecs.py documents,
and every hook is documented and exercised by a test."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from framestyle import hookspecs
from framestyle.engine.driver import run
from framestyle.host import PluginHost, iter_hook_names
from framestyle.settings import Settings

TESTS = Path(__file__).parent


class Recorder:
    """Implements every hook and records each call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        for name in iter_hook_names():
            setattr(self, name, self._make(name))

    def _make(self, name: str):
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        # A real function with the hook's own argument names, as pluggy expects.
        # stylize is a wrapper: a plain implementation would take the frames
        # off the default, batched path, which this run is to cover.
        body = f"    record({name!r}, locals())" + ("\n    return (yield)" if name == "stylize" else "")
        namespace: dict = {}
        exec(f"def {name}({params}):\n{body}", {"record": self._record}, namespace)
        return hookspecs.hookimpl(tryfirst=True, wrapper=name == "stylize")(namespace[name])

    def _record(self, name: str, args: dict) -> None:
        status = getattr(args.get("event"), "status", "")
        self.calls.append(f"{name}:{status}" if status else name)


@pytest.fixture
def tiny_run_calls(photos, tmp_path, weights) -> list[str]:
    """Every hook call, in order, over two runs: two photos (one of them
    empty), a missing input; then again, the first output now complete."""
    (tmp_path / "out").mkdir()
    (photos / "space" / "rocket.png").unlink()
    recorder = Recorder()
    host = PluginHost(autoload=False)
    host.register(recorder, "recorder")
    settings = Settings(inputs=[photos, tmp_path / "missing.jpg"], style=[tmp_path / "style.jpg"],
                        output=tmp_path / "out", size=24, iterations=2)
    (photos / "zz-bad.png").write_bytes(b"")
    assert run(settings, host, weights).exit_code == 1
    assert run(settings, host, weights).exit_code == 1  # again: cat.png is now complete
    return recorder.calls


def test_hook_order_over_a_tiny_run(tiny_run_calls):
    registration = ["register_optimizers", "register_losses", "register_loaders", "register_writers",
                    "register_flows", "register_executors"]
    assert sorted(tiny_run_calls[:6]) == sorted(registration)
    first_run = [
        "on_run_start",
        # batched images start in order of their working size; an unreadable
        # header (zz-bad.png, an empty file) sorts first
        "on_source_start", "on_source_end:failed",
        "on_source_start", "on_frame_start", "init_image", "stylize",
        # the recorder's stylize wraps the built-in optimisation, which the
        # unit runs batched: its part before the result comes first
        "on_step", "on_step", "on_frame_end", "on_source_end:done",
        "on_run_end",
    ]
    rest = tiny_run_calls[6:]
    assert rest[: len(first_run)] == first_run
    second_run = rest[len(first_run):]
    assert second_run == ["on_run_start", "on_source_start", "on_source_end:skipped",
                          "on_source_start", "on_source_end:failed", "on_run_end"]


def hook_implementations(node: ast.AST) -> set[str]:
    """Names of the functions marked as hook implementations (``@framestyle.hookimpl``,
    ``@hookimpl(...)``) in ``node``, and in the plugin modules it writes out
    as strings."""
    found = {child.name for child in ast.walk(node) if isinstance(child, ast.FunctionDef)
             and any("hookimpl" in ast.unparse(decorator) for decorator in child.decorator_list)}
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and "hookimpl" in child.value:
            try:
                found |= hook_implementations(ast.parse(child.value))
            except SyntaxError:  # a string that only mentions hookimpl
                pass
    return found


def hooks_asserted_on(source: str) -> set[str]:
    """The hooks implemented by plugins that a test which asserts something
    uses: defined in the test itself, or at the module's top level (a class,
    a function, a plugin module as a string) and named in the test. A plugin
    that no asserting test uses proves nothing."""
    tree = ast.parse(source)
    top_level: dict[str, set[str]] = {}
    for node in tree.body:
        targets = [node.name] if isinstance(node, ast.ClassDef | ast.FunctionDef) else \
            [target.id for target in node.targets if isinstance(target, ast.Name)] if isinstance(node, ast.Assign) \
            else []
        for name in targets:
            top_level[name] = hook_implementations(node)
    hooks: set[str] = set()
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
            continue
        if not any(isinstance(child, ast.Assert) or "raises" in ast.unparse(child)
                   for child in ast.walk(node) if isinstance(child, ast.Assert | ast.With)):
            continue
        used = {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}
        hooks |= hook_implementations(node)
        for name in used & top_level.keys():
            hooks |= top_level[name]
    return hooks


def test_every_hook_is_documented_with_its_signature_called_and_tested(tiny_run_calls):
    docs = inspect.getsource(hookspecs)
    order_doc = docs.split('"""', 2)[1]
    test_files = [p for p in [*TESTS.glob("test_*.py"), *TESTS.parent.glob("plugins/*/tests/test_*.py")]
                  if p.name != Path(__file__).name]
    implemented = set().union(*(hooks_asserted_on(p.read_text()) for p in test_files))
    called = {call.split(":")[0] for call in tiny_run_calls}
    guide = (TESTS.parent / "docs" / "plugins.md").read_text()
    for name in iter_hook_names():
        spec = getattr(hookspecs, name)
        signature = f"{name}({', '.join(inspect.signature(spec).parameters)})"
        assert (spec.__doc__ or "").strip(), f"hook {name} has no docstring"
        assert name in order_doc, f"hook {name} is missing from the order in hookspecs' docstring"
        assert name in called, f"the core never called hook {name} over a run"
        assert name in implemented, f"no test that asserts something uses a plugin implementing hook {name}"
        assert f"`{signature}`" in guide, f"docs/plugins.md does not document {signature}"
