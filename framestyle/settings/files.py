"""Defaults from files and presets, and the resolved settings written back.

Where a setting comes from, lowest first:

1. :class:`Settings`' own defaults;
2. a named preset (``--preset``, or ``preset = "…"`` in the file);
3. the config file: ``--config FILE``, else ``framestyle.toml`` in the current
   folder, else ``[tool.framestyle]`` in ``pyproject.toml`` there;
4. options given on the command line (or keyword arguments of the API).

Keys are :class:`Settings` field names (``style_weight`` or ``style-weight``).
Paths in a file are relative to the file. After a run, the settings it used
are written as ``framestyle-run.toml`` beside the outputs; ``--config`` on
that file repeats the run exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from framestyle.errors import UsageError, did_you_mean
from framestyle.settings import Settings, parse_change, parse_layer_weights, parse_memory, parse_region, parse_tile

PRESETS: dict[str, dict[str, Any]] = {
    # A quick look: small, few iterations, video frames stop early.
    "fast": {"size": 256, "iterations": 100, "first_iterations": 150, "min_iterations": 10, "tolerance": 0.01},
    # The defaults: Gatys et al.'s balance of time and finish.
    "balanced": {"size": 512, "iterations": 300, "first_iterations": None, "min_iterations": 20,
                 "tolerance": 0.005},
    # Large and converged: for prints and final renders.
    "quality": {"size": 1024, "iterations": 800, "first_iterations": 1000, "min_iterations": 40,
                "tolerance": 0.002},
}

# Settings a file may not set: what to run on is always given on the command line.
NOT_IN_FILES = {"inputs", "verbosity"}
PATH_FIELDS = {"style", "output", "weights"}


def find_config(explicit: Path | None) -> tuple[Path, dict[str, Any]] | None:
    """The config file in effect and its framestyle table, or None."""
    folder = Path.cwd()
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--config {explicit}: no such file")
        table = read_toml(explicit)
        if explicit.name == "pyproject.toml":
            table = table.get("tool", {}).get("framestyle", {})
        return explicit, table
    if (folder / "framestyle.toml").is_file():
        return folder / "framestyle.toml", read_toml(folder / "framestyle.toml")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        table = read_toml(pyproject).get("tool", {}).get("framestyle")
        if table is not None:
            return pyproject, table
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def preset_values(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}{did_you_mean(name, PRESETS)}")
    return dict(PRESETS[name])


def file_values(path: Path, table: dict[str, Any]) -> dict[str, Any]:
    """The table's settings, checked and converted to Settings' types."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key == "preset":
            continue
        if key == "shots":  # [[shots]] at = "12.5s", style = "b.jpg": --style-at, as a list
            values["style_at"] = values.get("style_at", []) + shots(path, value)
            continue
        if key not in fields or key in NOT_IN_FILES:
            allowed = set(fields) - NOT_IN_FILES | {"preset"}
            raise UsageError(f"{path}: unknown setting {raw_key!r}{did_you_mean(key, allowed)}")
        values[key] = convert(path, key, value, fields[key].default)
    return values


def convert(path: Path, key: str, value: Any, default: Any) -> Any:
    """``value`` from a TOML file as the type of the field ``key``."""
    where = f"{path}: {key}"
    if key in PATH_FIELDS:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise UsageError(f"{where}: expected a path or a list of paths")
        paths = [absolute(path.parent / v) for v in items]
        return paths if key == "style" else paths[0]
    if key == "style_layers":
        if isinstance(value, str):
            try:
                return parse_layer_weights(value)
            except ValueError as exc:
                raise UsageError(f"{where}: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
            raise UsageError(f"{where}: expected a table of layer = weight")
        return {k: float(v) for k, v in value.items()}
    if key == "losses":
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
            raise UsageError(f"{where}: expected a table of loss = weight")
        return {k: float(v) for k, v in value.items()}
    if key == "preserve_colors" and value in ("none", False):
        return None
    if key == "preserve_colors" and value is True:
        return "luminance"
    if key == "batch_size" and value == "auto":
        return 0
    if key in ("tile", "max_memory"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise UsageError(f"{where}: expected a number or text")
        try:
            return parse_tile(str(value)) if key == "tile" else parse_memory(str(value))
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    if key == "style_at":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where}: expected a list of POSITION=STYLE")
        return [style_change_from(path, text) for text in value]
    if key == "regions":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where}: expected a list of MASK=STYLE")
        return [region_from(path, text) for text in value]
    if key == "style_weights":
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) for v in value):
            raise UsageError(f"{where}: expected a list of numbers")
        return [float(v) for v in value]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false")
        return value
    if isinstance(default, int) or key in ("first_iterations", "crf"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: expected a whole number")
        return value
    if isinstance(default, float) or key == "learning_rate" or key.endswith("_weight"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: expected a number")
        return float(value)
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected text")
    return value


def shots(path: Path, value: Any) -> list[str]:
    """``[[shots]]`` tables (``at``, ``style``: a path, a list of paths or
    ``a.jpg+b.jpg:0.3``; optional ``weights``) as ``--style-at`` values."""
    if not isinstance(value, list) or not all(isinstance(shot, dict) for shot in value):
        raise UsageError(f"{path}: shots: expected [[shots]] tables with at and style")
    changes = []
    for number, shot in enumerate(value, 1):
        at, style, weights = shot.get("at"), shot.get("style"), shot.get("weights")
        styles = style if isinstance(style, list) else [style]
        if not isinstance(at, (str, int)) or isinstance(at, bool) or not all(isinstance(s, str) for s in styles) \
                or (weights is not None and (not isinstance(weights, list) or len(weights) != len(styles))):
            raise UsageError(f"{path}: shot {number}: give at (a frame number or a time such as \"12.5s\"), "
                             "style (a path or a list of paths) and, if you like, one weight per style")
        parts = [s if weights is None else f"{s}:{w}" for s, w in zip(styles, weights or styles, strict=True)]
        changes.append(style_change_from(path, f"{at}={'+'.join(parts)}"))
    return changes


def style_change_from(path: Path, text: str) -> str:
    """A ``--style-at`` value from a file, its style paths made absolute from the file's folder."""
    try:
        change = parse_change(text)
    except ValueError as error:
        raise UsageError(f"{path}: {error}") from None
    return change.position + "=" + "+".join(f"{absolute(path.parent / style)}:{weight}"
                                             for style, weight in change.styles)


def region_from(path: Path, text: str) -> str:
    """A ``--region`` value from a file, its mask and style made absolute from the file's folder."""
    try:
        mask, style = parse_region(text)
    except ValueError as error:
        raise UsageError(f"{path}: {error}") from None
    return f"{absolute(path.parent / mask)}={absolute(path.parent / style)}"


def resolve(explicit: dict[str, Any], config: Path | None = None, preset: str | None = None,
            search: bool = True) -> tuple[Settings, Path | None]:
    """Settings from the layers above; ``explicit`` holds what the command
    line (or the API caller) gave. Only with ``search`` is the current folder
    looked in for a config file. Returns the settings and the file used."""
    found = find_config(config) if config is not None or search else None
    table = found[1] if found else {}
    values: dict[str, Any] = {}
    chosen = preset or table.get("preset")
    if chosen is not None:
        values.update(preset_values(str(chosen)))
    if found:
        values.update(file_values(*found))
    values.update(explicit)
    return Settings(**values), found[0] if found else None


def to_toml(settings: Settings) -> str:
    """The settings as a framestyle config file (everything but the inputs)."""
    lines = ["# The settings of a framestyle run, all of them resolved.",
             "# Repeat it with: framestyle run INPUT... --config THIS_FILE", ""]
    tables = []
    for name, value in settings.to_json().items():
        if name in NOT_IN_FILES or value is None:
            continue
        if name in PATH_FIELDS:  # absolute: the file may be used from anywhere
            value = [str(absolute(v)) for v in value] if isinstance(value, list) else str(absolute(value))
        if isinstance(value, dict):
            tables.append(f"\n[{name}]\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in value.items()))
        else:
            lines.append(f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n" + "".join(tables)


def absolute(path: str | Path) -> Path:
    """``path`` made absolute, with ``..`` removed (as a shell user reads it)."""
    return Path(os.path.normpath(Path(path).absolute()))


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else toml_value(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(c if c.isprintable() else f"\\U{ord(c):08x}" for c in text)
    return f'"{text}"'
