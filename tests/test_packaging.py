"""What the package claims about itself is true: the Python it says it needs
is enough for every line of its code, and no less would be."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Standard-library modules and names newer than Python 3.10, with the version
# that brought them: what the code imports of these sets its true minimum.
NEWER = {"tomllib": (3, 11), "typing.Self": (3, 11), "typing.assert_never": (3, 11), "enum.StrEnum": (3, 11),
         "datetime.UTC": (3, 11), "typing.override": (3, 12), "itertools.batched": (3, 12),
         "typing.TypeIs": (3, 13), "warnings.deprecated": (3, 13)}


def declared_minimum(pyproject: Path) -> tuple[int, int]:
    spec = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
    major, minor = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec).groups()
    return int(major), int(minor)


def sources() -> list[Path]:
    return sorted([*(ROOT / "framestyle").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")])


def needed(tree: ast.AST) -> set[tuple[str, tuple[int, int]]]:
    """The newer modules and names the code imports, with their versions."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {(name, NEWER[name]) for name in names if name in NEWER}
    return found


def test_requires_python_is_what_the_code_needs():
    projects = [ROOT / "pyproject.toml", *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]
    minimum = declared_minimum(ROOT / "pyproject.toml")
    assert {declared_minimum(p) for p in projects} == {minimum}, "the plugins claim another Python"
    used: set[tuple[str, tuple[int, int]]] = set()
    for path in sources():
        source = path.read_text()
        # The syntax of the oldest Python claimed (match, except*, PEP 695 ...).
        tree = ast.parse(source, str(path), feature_version=minimum)
        used |= needed(tree)
    too_new = sorted(name for name, version in used if version > minimum)
    assert not too_new, f"requires-python >={minimum[0]}.{minimum[1]}, but the code imports {too_new}"
    # ... and no lower claim would hold: something needs exactly the minimum.
    assert max((version for _, version in used), default=(3, 0)) == minimum, used


def test_bench_finds_its_style_image_inside_the_installed_package():
    from framestyle.bench import bundled_style

    style = bundled_style()
    assert style.is_file() and style.stat().st_size > 10_000
    assert (ROOT / "framestyle") in style.resolve().parents  # not samples/, which an install lacks
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(style.name in pattern or "*.jpg" in pattern for pattern in data["framestyle"])
