"""What a run leaves beside its outputs, besides the outputs:

* ``framestyle-run.toml``: every setting, resolved (``--config`` on it repeats
  the run exactly);
* ``framestyle-run.json``: which input became which output, with its status,
  iterations, seconds and loss, for ``framestyle report``;
* ``framestyle-run.journal`` while the run goes on: each input's record as it
  ends, one JSON line each, so that a run killed before it could write the
  manifest (SIGKILL, a lost machine) keeps its figures for the rerun's.

In an output folder they are named as above; beside a single output file
``out.png`` they are ``out.png.framestyle-run.toml`` and so on. A rerun
(resume) keeps the records of items it skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framestyle.media.images import write_text_atomic
from framestyle.settings import Settings
from framestyle.settings.files import to_toml

SETTINGS_FILE = "framestyle-run.toml"
MANIFEST_FILE = "framestyle-run.json"
JOURNAL_FILE = "framestyle-run.journal"
REPORT_FILE = "framestyle-report.html"


@dataclass(slots=True)
class ItemRecord:
    input: str
    output: str
    kind: str  # "image" or "video"
    status: str  # "done", "skipped", "failed"
    frames: int = 0
    iterations: int = 0
    seconds: float = 0.0
    loss: float | None = None
    message: str = ""
    tiles: int = 0  # the most tiles a frame was optimised in (0: whole)
    made_with: str = ""  # the settings, source and weights it was made with (a rerun redoes it when they change)

    def as_dict(self) -> dict[str, Any]:
        """Its fields as JSON takes them: plain values all, so without
        ``asdict``'s deep copy of each (a cluster's driver journals
        thousands of records a second)."""
        return {name: getattr(self, name) for name in self.__slots__}


def beside(output: Path, to_file: bool, name: str) -> Path:
    """``name`` in the output folder, or prefixed by a single output file's name."""
    return output.with_name(f"{output.name}.{name}") if to_file else output / name


def find_manifest(output: Path) -> Path | None:
    """The manifest of the run that wrote ``output`` (a folder or a file)."""
    for candidate in (output / MANIFEST_FILE, output.with_name(f"{output.name}.{MANIFEST_FILE}")):
        if candidate.is_file():
            return candidate
    return None


def write_records(settings: Settings, output: Path, to_file: bool, items: list[ItemRecord]) -> Path | None:
    """Write both files, merging with an earlier run's manifest; returns the
    manifest's path, or None when no output exists to describe."""
    if not any(item.status in ("done", "skipped") for item in items):
        return None
    manifest, journal = beside(output, to_file, MANIFEST_FILE), beside(output, to_file, JOURNAL_FILE)
    merged = {item["output"]: item for item in [*read_items(manifest), *read_journal(journal)]}
    for item in items:
        earlier = merged.get(item.output)
        if item.status == "skipped" and earlier and earlier.get("status") == "done":
            continue  # finished by an earlier run: its figures stay
        merged[item.output] = item.as_dict()
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings.to_json(),
        "items": list(merged.values()),
    }
    write_text_atomic(beside(output, to_file, SETTINGS_FILE), to_toml(settings))
    write_text_atomic(manifest, json.dumps(document, indent=1, default=str))
    journal.unlink(missing_ok=True)  # all of it is in the manifest now
    return manifest


class Journal:
    """Records appended as inputs end, a JSON line each (a line is one
    ``write``: a killed process leaves whole lines, but for perhaps the last)."""

    def __init__(self, output: Path, to_file: bool) -> None:
        self.path = beside(output, to_file, JOURNAL_FILE)
        self.file: Any = None

    def add(self, item: ItemRecord) -> None:
        if self.file is None:
            if not self.path.parent.is_dir():  # no output yet: nothing the journal could save
                return
            self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: a write a line
        self.file.write(json.dumps(item.as_dict(), default=str) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The records a killed run journaled (a torn last line left out)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    items = []
    for line in lines:
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    return [item for item in items if isinstance(item, dict) and "output" in item]


def read_items(manifest: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(manifest.read_text())["items"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
