"""Turn INPUT arguments into work items with predictable output names.

* A file gives one item. A folder is walked recursively in natural order
  (``img2`` before ``img10``); hidden files and folders, and the output folder
  if it lies inside, are never read; files no loader claims are skipped with a
  note.
* One input file with ``-o`` naming a file of a writable format writes exactly
  there. Otherwise ``-o`` is a folder: a file input ``a/b.jpg`` becomes
  ``OUT/b.png``, a file ``DIR/x/y.jpg`` inside a folder input becomes
  ``OUT/x/y.png`` (the folder's layout mirrored), with the extension of
  ``--format`` for images and ``--video-format`` for videos (``clip.mov``
  becomes ``OUT/clip.mp4``); ``--writer frames`` makes ``OUT/clip/``. Two inputs that differ only in extension keep it:
  ``x.jpg`` and ``x.png`` become ``x.jpg.png`` and ``x.png.png``.
* An output that would replace an input, or that two inputs would share, is a
  failure of that item, never an overwrite.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from framestyle.engine.formats import kind_of
from framestyle.errors import UsageError
from framestyle.host import Registry
from framestyle.media.sequence import is_sequence, sequence_stem
from framestyle.settings import Settings
from framestyle.types import LoaderSpec, WriterSpec


@dataclass(frozen=True)
class FoundInput:
    path: Path
    output: Path


@dataclass
class FoundInputs:
    items: list[FoundInput]
    failures: list[tuple[Path, str]]  # inputs that cannot even be planned
    unclaimed: list[Path]  # files inside folders that no loader reads
    to_file: bool = False  # -o names the one output file (not a folder)


def natural_key(text: str) -> list[object]:
    """Sort key that orders digit runs by value: ``f2`` < ``f10``."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", text)]


def walk(folder: Path, exclude: Path | None) -> list[tuple[Path, Path]]:
    """Every non-hidden file under ``folder`` with its path relative to it,
    in natural order of their path parts (a folder's files and subfolders
    interleaved by name), not entering ``exclude`` (an output folder inside
    the input) or symlinked folders. One ``scandir`` a folder: a million
    files are listed in seconds."""
    excluded = real_path(exclude) if exclude is not None else None
    found: list[tuple[Path, Path]] = []

    def visit(directory: str, relative: str) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return  # unreadable: skipped, as os.walk does
        rows = [(natural_key(entry.name), is_folder(entry), entry) for entry in entries
                if not entry.name.startswith(".")]
        rows.sort(key=lambda row: (row[0], row[1]))  # a file before a folder of the same name
        for _, folder_entry, entry in rows:
            inner = relative + entry.name
            if not folder_entry:
                found.append((Path(entry.path), Path(inner)))
            elif not entry.is_symlink() and (excluded is None or real_path(Path(entry.path)) != excluded):
                visit(entry.path, inner + os.sep)

    visit(os.fspath(folder), "")
    return found


def is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def real_path(path: Path) -> Path:
    """``path`` with symbolic links resolved, as far as they resolve (a link
    loop stays as it is: opening it fails later, for that file alone)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop"
        return path.absolute()


class RealPaths:
    """:func:`real_path` for many files of few folders: each folder is
    resolved once, each file costs one ``lstat`` (is it a link?)."""

    def __init__(self) -> None:
        self.folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> Path:
        if path.name in ("", ".", "..") or path.is_symlink():
            return real_path(path)
        folder = self.folders.get(path.parent)
        if folder is None:
            folder = self.folders[path.parent] = real_path(path.parent)
        return folder / path.name


def _same(a: Path, b: Path | None) -> bool:
    return b is not None and real_path(a) == real_path(b)


def output_suffix(kind: str, settings: Settings, writers: Registry[WriterSpec]) -> str:
    """The extension of an output made from an input of ``kind``, when ``-o``
    is a folder: ``--writer``'s own, else ``--format`` (images) or
    ``--video-format`` (videos)."""
    if settings.writer:
        spec = writers.get(settings.writer)
        return spec.extensions[0] if spec.extensions else ""
    option, fmt = ("--video-format", settings.video_format) if kind == "video" else ("--format", settings.format)
    ext = "." + fmt.lower().lstrip(".")
    if ext not in writers.extensions():
        raise UsageError(
            f"{option} {fmt}: no writer makes {ext} files; "
            f"available: {', '.join(sorted(e.lstrip('.') for e in writers.extensions()))}"
        )
    return ext


def single_output_file(settings: Settings, writers: Registry[WriterSpec]) -> bool:
    """Whether ``-o`` names the output itself (one input file): it has a
    writable extension, or ``--writer`` names a writer of folders (frames)."""
    output = settings.output
    assert output is not None
    if len(settings.inputs) != 1 or Path(settings.inputs[0]).is_dir():
        if is_sequence(output):
            raise UsageError(f"-o {output}: numbered files are the frames of one video; give one video or "
                             "sequence as the input, or a folder as -o")
        return False
    if is_sequence(output):
        return True
    if settings.writer and not writers.get(settings.writer).extensions:
        return True
    if not output.suffix or output.is_dir():
        return False
    if output.suffix.lower() not in writers.extensions():
        raise UsageError(
            f"-o {output}: no writer makes {output.suffix} files "
            f"(available: {', '.join(sorted(e.lstrip('.') for e in writers.extensions()))}); "
            f"to write into a folder of that name, create it first"
        )
    return True


def find_inputs(settings: Settings, loaders: Registry[LoaderSpec], writers: Registry[WriterSpec]) -> FoundInputs:
    if settings.output is None:
        raise UsageError("no output: pass -o OUTPUT (a folder, or a file for one input)")
    if not settings.inputs:
        raise UsageError("no inputs: pass one or more image files or folders")
    output = Path(settings.output)
    to_file = single_output_file(settings, writers)
    readable = loaders.extensions()
    result = FoundInputs([], [], [], to_file)

    found: list[tuple[Path, Path]] = []  # (input file, path relative to its root)
    sequences: set[Path] = set()
    for raw in settings.inputs:
        path = Path(raw)
        if path.is_dir():
            if _same(path, output):
                raise UsageError(f"-o {output} is the input folder itself; choose another folder")
            for file, relative in walk(path, exclude=output):
                if settings.loader or file.suffix.lower() in readable:
                    found.append((file, relative))
                else:
                    result.unclaimed.append(file)
        elif path.exists():
            found.append((path, Path(path.name)))
        elif is_sequence(path):  # frame_%04d.png: named for what the numbers follow (frame.mp4)
            sequences.add(path)
            found.append((path, Path(sequence_stem(path) + path.suffix)))
        elif path.is_symlink():
            result.failures.append((path, "a symbolic link to nothing (broken, or a loop)"))
        else:
            result.failures.append((path, "no such file or folder"))

    real = RealPaths()
    inputs = {real(path) for path, _ in found}
    stems = Counter((relative.parent, relative.stem.casefold()) for _, relative in found)
    claimed: dict[Path, Path] = {}
    suffixes: dict[str, str] = {}  # the output's extension by the input's
    for path, relative in found:
        # photo.jpg -> photo.png; but photo.jpg and photo.png side by side
        # become photo.jpg.png and photo.png.png, whatever order they come in.
        shared = stems[(relative.parent, relative.stem.casefold())] > 1
        by = "sequence" if path in sequences else path.suffix
        ext = "" if to_file else suffixes.get(by)
        if ext is None:
            ext = suffixes[by] = output_suffix(kind_of(path, settings, loaders), settings, writers)
        name = (relative.name if shared else relative.stem) + ext
        target = output if to_file else output / relative.parent / name
        key = real(target)
        if key in inputs:
            result.failures.append((path, f"output {target} would replace an input; choose another -o"))
        elif key in claimed:
            result.failures.append((path, f"output {target} is already the output of {claimed[key]}"))
        else:
            claimed[key] = path
            result.items.append(FoundInput(path, target))
    return result
