"""The worker side of the ``ray`` executor (:mod:`framestyle.engine.executors.ray.executor`):
one long-lived process per GPU, or per few CPU cores, that keeps its plugin
host, network and style targets across the units it runs.

Plain Python: the executor wraps :class:`RayWorker` with ``ray.remote``, so
this module imports no Ray and runs (and is tested) like any other.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framestyle.engine.executors import Fatal
from framestyle.engine.executors.ray.messages import Batch, Ended, Where, node_of_this_process
from framestyle.engine.runner.context import UnitContext
from framestyle.engine.runner.unit import run_unit
from framestyle.engine.units import RunSpec, Unit
from framestyle.errors import PluginError, UsageError
from framestyle.log import setup_logging
from framestyle.transfer.weights import Weights


class RayWorker:
    """Runs units, one at a time, with one :class:`UnitContext` for all of
    them; ``weights`` are the driver's, so that every node stylises with the
    very same network whatever its disk holds."""

    def __init__(self, spec: RunSpec, cores: int, cwd: str) -> None:
        import cv2
        import torch

        torch.set_num_threads(cores)
        cv2.setNumThreads(cores)
        if os.path.isdir(cwd):  # relative paths mean what they meant to the driver (shared storage)
            os.chdir(cwd)
        setup_logging(spec.settings.verbosity)  # to the worker's log file, never the driver's stdout
        self.where_ = Where(*node_of_this_process(), socket.gethostname(), os.getpid())
        self.context = UnitContext.build(spec)  # the plugins now: one missing on this node fails the start

    def where(self) -> Where:
        return self.where_

    def probe(self, token: Path, expected: str, paths: list[Path]) -> list[str]:
        """What this node does not see of the run's storage: the driver's
        token file (the same output folder, not a folder of the same name),
        then each input and style path."""
        problems = []
        try:
            if token.read_text() != expected:
                problems.append(f"{token.parent} is another folder here than on the driver")
        except OSError as error:
            problems.append(f"{token.parent} ({error.strerror or error})")
        for path in paths:
            if not path.exists():
                problems.append(f"{path} (no such file or folder)")
        return problems

    def run(self, unit: Unit, weights: list[Any]) -> Iterator[list[object]]:
        """Run ``unit`` and yield its events as they come, in lists: first
        where it runs, then events, :class:`Fatal` for an error that ends the
        run; a unit's own crash is raised. ``weights``: the driver's
        :class:`~framestyle.transfer.weights.Weights`, or a reference to them
        in Ray's object store (in a list, so that Ray leaves it be): fetched
        for the first unit only."""
        yield [self.where_]
        if self.context.weights is None:
            self.context.weights = resolved(weights[0])
        messages: queue.Queue[object] = queue.Queue()
        thread = threading.Thread(target=self.work, args=(unit, messages), daemon=True,
                                  name=f"framestyle-{unit.uid}")
        thread.start()
        batch = Batch()
        while True:
            try:
                message = messages.get(timeout=batch.due())
            except queue.Empty:
                message = None
            ended = isinstance(message, Ended | BaseException)
            if message is not None and not ended:
                batch.add(message)
            if batch.events and (ended or batch.due() == 0):
                yield batch.take()
            if isinstance(message, BaseException):
                raise message
            if ended:
                return

    def work(self, unit: Unit, messages: queue.Queue[object]) -> None:
        try:
            run_unit(unit, self.context, messages.put)
            messages.put(Ended())
        except (UsageError, PluginError) as error:
            messages.put(Fatal(error))
            messages.put(Ended())
        except BaseException as error:  # raised in the driver as the unit's failure
            messages.put(error)


def resolved(weights: Any) -> Weights:
    if isinstance(weights, Weights):
        return weights
    import ray

    return ray.get(weights)
