"""Numbered image files read as one video: ``shot/frame_%04d.png`` (printf
style, as ffmpeg and EbSynth name them) or ``shot/frame_####.png`` (one ``#``
a digit, as compositing tools do).

A sequence has no frame rate of its own; the run's ``--fps`` gives it one.
Its frames keep their numbering's timing: a number missing from the run of
files, or a file that cannot be read, is filled with the frame before it,
as a damaged frame of a video file is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from framestyle.errors import InputError
from framestyle.media.images import image_size, read_image
from framestyle.settings import MAX_PIXELS
from framestyle.types import SourceInfo

log = logging.getLogger("framestyle")

# %d, %04d; or a run of #: where a sequence's frame number goes in its name.
NUMBER = re.compile(r"%0?(\d*)d|(#+)")


def is_sequence(path: Path) -> bool:
    """Whether ``path`` names a sequence: a number pattern in its file name,
    and no file of that very name (a file may have % or # in its name)."""
    return NUMBER.search(path.name) is not None and not path.exists()


def sequence_stem(path: Path) -> str:
    """The name an output takes from a sequence: ``frame_%04d.png`` → ``frame``."""
    stem = NUMBER.sub("", path.name[: len(path.name) - len(path.suffix)]).strip("._- ")
    return stem or path.parent.name or "sequence"


def digits(match: re.Match[str]) -> int:
    """How many digits a number pattern asks for at least (``%04d``, ``####``: 4; ``%d``: 0)."""
    return len(match.group(2) or "") or int(match.group(1) or 0)


def numbered(pattern: Path, number: int) -> Path:
    """The file of ``pattern`` that holds frame ``number`` (``%05d``, ``#####``: five digits at least)."""
    def padded(match: re.Match[str]) -> str:
        return f"{number:0{digits(match)}d}"

    return pattern.with_name(NUMBER.sub(padded, pattern.name, count=1))


def printf_pattern(pattern: Path) -> tuple[Path, int]:
    """The pattern as ffmpeg reads it (``####`` → ``%04d``) and the first number there is a file for."""
    files = numbered_files(pattern)
    if not files:
        raise InputError("no files match the sequence's pattern")

    def printf(match: re.Match[str]) -> str:
        return f"%0{digits(match)}d" if digits(match) else "%d"

    return pattern.with_name(NUMBER.sub(printf, pattern.name, count=1)), files[0][0]


def numbered_files(pattern: Path) -> list[tuple[int, Path]]:
    """The files the pattern names, (number, path) in the numbers' order. A
    padded pattern (``%04d``, ``####``) takes numbers written at least that
    wide, zero-padded, as ffmpeg reads them."""
    match = NUMBER.search(pattern.name)
    assert match is not None
    width = digits(match)
    name = re.compile(re.escape(pattern.name[: match.start()]) + r"(\d+)" + re.escape(pattern.name[match.end():]) + "$")
    found = []
    try:
        entries = list(os.scandir(pattern.parent))
    except OSError as error:
        raise InputError(f"the sequence's folder cannot be read ({error.strerror or error})") from None
    for entry in entries:
        number = name.match(entry.name)
        if number and len(number.group(1)) >= width and entry.is_file():
            found.append((int(number.group(1)), pattern.parent / entry.name))
    return sorted(found)


class SequenceSource:
    """The numbered files of a sequence, decoded one by one in order."""

    def __init__(self, path: Path, max_pixels: int = MAX_PIXELS) -> None:
        self.path = path
        self.files = numbered_files(path)
        if not self.files:
            raise InputError("no files match the sequence's pattern")
        self.first = self.files[0][0]
        self.by_number = dict(self.files)
        self.max_pixels = max_pixels
        width, height = self.frame_size(self.files[0][1])
        count = self.files[-1][0] - self.first + 1
        self.info = SourceInfo(path, "video", width, height, frame_count=count)

    def frame_size(self, file: Path) -> tuple[int, int]:
        try:
            return image_size(file, self.max_pixels)
        except InputError as error:
            raise InputError(f"{file.name}: {error}") from None

    def frames(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.frames_from(0))

    def frames_from(self, start: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) from frame ``start`` on (index 0: the lowest number)."""
        previous: np.ndarray | None = None
        missing: list[int] = []
        for index in range(start, self.info.frame_count or 0):
            frame = self.read(self.by_number.get(self.first + index))
            if frame is None:
                missing.append(self.first + index)
                continue
            if missing and previous is not None:
                log.warning("%s: frame(s) %s missing or unreadable; the frame before them is repeated in "
                            "their place", self.path, number_span(missing))
                yield from ((index - len(missing) + at, previous) for at in range(len(missing)))
            elif missing:  # nothing before them in this reading: start from the first good frame
                log.warning("%s: frame(s) %s missing or unreadable; the next frame takes their place",
                            self.path, number_span(missing))
                yield from ((index - len(missing) + at, frame) for at in range(len(missing)))
            missing = []
            previous = frame
            yield index, frame

    def read(self, file: Path | None) -> np.ndarray | None:
        """The frame in ``file``, at the sequence's size; None if it is not there or unreadable."""
        if file is None:
            return None
        try:
            frame = read_image(file, self.max_pixels)
        except InputError as error:
            log.warning("%s: %s", file, error)
            return None
        if frame.shape[1::-1] != (self.info.width, self.info.height):
            log.warning("%s: %dx%d, not the sequence's %dx%d", file, frame.shape[1], frame.shape[0],
                        self.info.width, self.info.height)
            return None
        return frame

    def close(self) -> None:
        pass


def number_span(numbers: list[int]) -> str:
    """Consecutive frame numbers, as the files are numbered: ``[3, 4, 5]`` -> ``3-5``."""
    return str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"


def sequence_identity(pattern: Path) -> str:
    """What a sequence's files are now (names, sizes, times): a frame
    changed, added or removed makes it another source."""
    digest = hashlib.sha256()
    for _, file in numbered_files(pattern):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
