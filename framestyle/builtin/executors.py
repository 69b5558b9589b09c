"""The built-in executors: ``local`` (the default), ``subprocess`` and ``ray``."""

from __future__ import annotations

from collections.abc import Callable

from framestyle.hookspecs import hookimpl
from framestyle.types import ExecutorSpec


def local() -> object:
    from framestyle.engine.executors.local import LocalExecutor

    return LocalExecutor()


def subprocess() -> object:
    from framestyle.engine.executors.subprocess import SubprocessExecutor

    return SubprocessExecutor()


def ray() -> object:
    from framestyle.engine.executors.ray.executor import RayExecutor

    return RayExecutor()


@hookimpl
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    register(ExecutorSpec("local", local, in_process=True,
                          description="this process: images of one size and a video's segments batched together"))
    register(ExecutorSpec("subprocess", subprocess,
                          description="each unit in a fresh process of its own, a few at a time (slow: "
                                      "a check that units need nothing of the process that planned them)"))
    register(ExecutorSpec("ray", ray,
                          description="a Ray cluster: a worker per GPU or per --worker-cores cores, on storage "
                                      'every node sees (pip install "framestyle[ray]"; --ray-address)'))
