"""The built-in executors: ``local`` (the default) and ``subprocess``."""

from __future__ import annotations

from collections.abc import Callable

from framestyle.hookspecs import hookimpl
from framestyle.types import ExecutorSpec


def local() -> object:
    from framestyle.engine.executors import LocalExecutor

    return LocalExecutor()


def subprocess() -> object:
    from framestyle.engine.executors import SubprocessExecutor

    return SubprocessExecutor()


@hookimpl
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    register(ExecutorSpec("local", local, in_process=True,
                          description="this process: images of one size and a video's segments batched together"))
    register(ExecutorSpec("subprocess", subprocess,
                          description="each unit in a fresh process of its own, a few at a time (slow: "
                                      "a check that units need nothing of the process that planned them)"))
