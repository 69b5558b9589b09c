"""Which loader opens an input and which writer makes an output: one place.

As imageio's ``imopen``: a name given (``--loader``, ``--writer``) wins;
otherwise the plugins that claim the file's extension are tried by
descending priority, a loader may decline a file (return None) so the next
one is tried, and when none fits the error lists what is installed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from framestyle.errors import InputError, UsageError
from framestyle.host import Hooks, Registry
from framestyle.media.sequence import is_sequence
from framestyle.media.window import FrameWindow
from framestyle.settings import Settings
from framestyle.types import LoaderSpec, Source, SourceInfo, Writer, WriterSpec

SEQUENCE_LOADER = "sequence"  # the built-in loader of numbered image files (builtin/video.py)
SEQUENCE_WRITER = "sequence"  # and its writer (-o out/%05d.png)


def kind_of(path: Path, settings: Settings, loaders: Registry[LoaderSpec]) -> str:
    """"image" or "video": what the loader that would open ``path`` reads."""
    candidates = loader_candidates(path, settings, loaders)
    return candidates[0].kind if candidates else "image"


def loader_candidates(path: Path, settings: Settings, loaders: Registry[LoaderSpec]) -> list[LoaderSpec]:
    """The loaders to try on ``path``, in turn: the one named, the sequence
    loader for a numbered pattern (``frame_%04d.png``), or those that claim
    its extension."""
    if settings.loader:
        return [loaders.get(settings.loader)]
    if is_sequence(path):
        return [loaders.get(SEQUENCE_LOADER)]
    return loaders.for_extension(path.suffix)


def open_source(path: Path, settings: Settings, hooks: Hooks) -> Source:
    """``path`` opened by the first loader that accepts it, within ``--max-pixels``."""
    loaders = hooks.loaders()
    candidates = loader_candidates(path, settings, loaders)
    if not candidates:
        raise InputError(f"no loader reads {path.suffix or 'extensionless'} files "
                         f"(installed: {', '.join(loaders.names()) or 'none'})")
    for spec in candidates:
        source = spec.open(path)
        if source is not None:
            if source.info.fps is None and source.info.kind == "video":  # a sequence: the run's rate
                source.info = dataclasses.replace(source.info, fps=settings.fps)
            source = within_limits(source, settings.max_pixels)
            if source.info.kind == "video" and (settings.start or settings.end):
                return in_window(source, settings)
            return source
    raise InputError(f"no loader accepted the file (tried {', '.join(s.name for s in candidates)})")


def in_window(source: Source, settings: Settings) -> Source:
    """The part of a video ``--start`` and ``--end`` name (media/window.py)."""
    try:
        return FrameWindow.of(source, settings.start, settings.end)
    except BaseException:
        source.close()
        raise


def within_limits(source: Source, max_pixels: int) -> Source:
    """Refuse a source whose frames are larger than ``max_pixels``, from its
    header, before a frame is decoded."""
    info = source.info
    if info.width * info.height > max_pixels:
        source.close()
        what = "its frames are" if info.kind == "video" else "it is"
        raise InputError(f"{what} {info.width}x{info.height} pixels, more than the limit of "
                         f"{max_pixels:,} (--max-pixels); not decoded")
    return source


def open_writer(spec: WriterSpec, target: Path, info: SourceInfo, settings: Settings, chunk: bool = False) -> Writer:
    """``spec``'s writer (or chunk writer) for ``target``, given the settings it takes."""
    make = spec.chunks.open if chunk and spec.chunks else spec.open
    return make(target, info, **{name: getattr(settings, name) for name in spec.options})


def check_writers(settings: Settings, writers: Registry[WriterSpec], chosen: list[WriterSpec]) -> None:
    """Before any work: the writers this run will use (``chosen``) can write
    what it asks (their own checks: a quality scale, a bit depth, an encoder
    the bundled ffmpeg has), and an option for writers reaches one."""
    for spec in chosen:
        if spec.check and (problem := spec.check(settings)):
            raise UsageError(problem)
    if settings.crf is not None and chosen and not any("crf" in spec.options for spec in chosen):
        raise UsageError(f"--crf: no writer of this run takes it ({', '.join(s.name for s in chosen)}); "
                         f"those that do: {', '.join(n for n in writers.names() if 'crf' in writers.get(n).options)}")


def writer_for(target: Path, settings: Settings, hooks: Hooks) -> WriterSpec:
    """The writer that makes ``target``."""
    writers = hooks.writers()
    if settings.writer:
        return writers.get(settings.writer)
    if is_sequence(target):
        return writers.get(SEQUENCE_WRITER)
    candidates = writers.for_extension(target.suffix)
    if not candidates:
        raise UsageError(f"no writer makes {target.suffix or 'extensionless'} files ({target}); "
                         f"installed: {', '.join(writers.names()) or 'none'}")
    return candidates[0]
