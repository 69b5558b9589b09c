"""Exceptions that the CLI turns into one-line errors and exit codes."""

from __future__ import annotations

import difflib
import errno
import logging
from collections.abc import Iterable
from pathlib import Path


class FramestyleError(Exception):
    """A handled error: the CLI prints ``framestyle: error: <message>``."""

    exit_code = 1


class UsageError(FramestyleError):
    """Bad options or arguments; nothing was processed."""

    exit_code = 2


class PluginError(FramestyleError):
    """A plugin could not be loaded or broke the plugin contract."""

    exit_code = 3


class InputError(FramestyleError):
    """One input cannot be processed; the run goes on with the others."""


class NonFiniteLossError(InputError):
    """The loss became NaN or infinite (extreme weights, a broken loss)."""


class WeightsNotFoundError(FramestyleError):
    """No VGG-19 weights anywhere framestyle looks."""

    exit_code = 2


def read_error(exc: OSError) -> InputError:
    """One line, without the path, for an OS error opening or reading an input."""
    if isinstance(exc, FileNotFoundError):
        return InputError("no such file")
    if isinstance(exc, PermissionError):
        return InputError("permission denied")
    if isinstance(exc, IsADirectoryError):
        return InputError("is a folder")
    if exc.errno == errno.ELOOP:
        return InputError("symbolic link loop")
    return InputError(f"cannot read: {exc.strerror or exc}")


class HookFailure(InputError):
    """A plugin raised inside a hook while an input was processed."""

    @classmethod
    def of(cls, plugin: str, hook_name: str, exc: Exception) -> HookFailure:
        return cls(f"plugin {plugin!r} failed in {hook_name}: {type(exc).__name__}: {exc}")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match, else the list of choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; choose from: {', '.join(choices) or '(none installed)'}"


def describe_error(error: BaseException, path: Path) -> str:
    """One line for an input's failure; with -v, the traceback of a bug
    (a plugin's, where a hook raised: what its author needs) before it."""
    if isinstance(error, HookFailure) and error.__cause__ is not None:
        logging.getLogger("framestyle").debug("traceback for %s", path, exc_info=error.__cause__)
    if isinstance(error, FramestyleError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
    # A codec's bug (or this code's) must not end the batch: its traceback with -v.
    logging.getLogger("framestyle").debug("traceback for %s", path, exc_info=error)
    return f"{type(error).__name__}: {error}"
