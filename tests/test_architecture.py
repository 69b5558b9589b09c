"""The layout keeps its promises: no import cycles, each layer imports only
the layers below it, and no module grows past what a reader takes in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "framestyle"
MAX_LINES = 400

# Layer: the framestyle packages and modules it must not import.
BELOW = {
    "framestyle.transfer": ("framestyle.host", "framestyle.engine", "framestyle.builtin", "framestyle.records",
                            "framestyle.cli", "framestyle.api"),
    "framestyle.media": ("framestyle.host", "framestyle.engine", "framestyle.builtin", "framestyle.records",
                         "framestyle.transfer"),
    "framestyle.records": ("framestyle.host", "framestyle.engine", "framestyle.builtin", "framestyle.transfer"),
    # Built-in plugins use what a third-party plugin can: the public types and
    # the maths, media and records libraries, never the run's machinery.
    "framestyle.builtin": ("framestyle.host", "framestyle.engine", "framestyle.api"),
    # The engine: planning, then the unit runner, then the executors that
    # run units, then the driver over them all.
    "framestyle.engine.planning": ("framestyle.engine.runner", "framestyle.engine.executors",
                                   "framestyle.engine.driver"),
    "framestyle.engine.runner": ("framestyle.engine.executors", "framestyle.engine.driver",
                                 "framestyle.engine.planning.plan", "framestyle.engine.planning.inputs"),
    "framestyle.engine.executors": ("framestyle.engine.driver", "framestyle.engine.planning"),
    "framestyle.types": ("framestyle.",),
    "framestyle.events": ("framestyle.",),
    "framestyle.errors": ("framestyle.",),
}
# Registering the core's own executors is the one built-in that names the run.
ALLOWED = {("framestyle.builtin.executors", f"framestyle.engine.executors.{name}")
           for name in ("local", "subprocess", "ray.executor")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The framestyle modules ``path`` imports, at the top or inside a
    function, leaving out ``if TYPE_CHECKING:`` blocks (annotations only)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}
    return {name for name in found if name in known and name != "framestyle"}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) for name, path in found.items()}


def test_no_import_cycles(graph):
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycle = trail[trail.index(other):] + [other] if other in trail else [name, other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_each_layer_imports_only_what_lies_below_it(graph):
    wrong = [(name, other) for name, others in graph.items() for other in others
             for layer, forbidden in BELOW.items()
             if (name == layer or name.startswith(layer + ".")) and other.startswith(forbidden)
             and (name, other) not in ALLOWED]
    assert not wrong, wrong


def test_built_in_plugins_do_not_import_each_other(graph):
    """Each built-in is a plugin like a third party's, which could be blocked
    with ``-p no:NAME``: what two of them share lives in a library below them."""
    builtins = {name for name in graph if name.startswith("framestyle.builtin.")}
    shared = [(name, other) for name in builtins for other in graph[name] & builtins
              if (name, other) not in ALLOWED]
    assert not shared, shared


def test_no_module_is_longer_than_a_reader_takes_in():
    long = {name: lines for name, path in modules().items()
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_every_break_of_the_mutation_harness_finds_its_text():
    """tests/mutations.py breaks code by replacing text; a break whose text
    has moved would fail the harness only when it is tried (CI tries a few a
    day): every one is checked here, on every run."""
    import mutations

    moved = [name for name, file, old, _, _ in mutations.BREAKS
             if (PACKAGE.parent / file).read_text().count(old) != 1]
    assert moved == [], f"update tests/mutations.py: {moved}"
