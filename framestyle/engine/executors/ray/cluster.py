"""What the ``ray`` executor's dispatcher (:mod:`framestyle.engine.executors.ray.executor`)
needs of the workers it sends units to, and Ray's side of it.

A :class:`Cluster` starts the workers, runs a unit on one and hands each of
its messages back as it comes, says when a dead worker is back, and kills
them at the end. :class:`RayCluster` does it with Ray's actors; the scale
benchmark (:mod:`framestyle.scale`) puts a cluster of thousands of stand-in
workers behind the same methods, so that the dispatcher it measures is this
one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

from framestyle.engine.executors.ray.joining import Placement, import_ray, join, worker_layout
from framestyle.engine.executors.ray.messages import Where
from framestyle.engine.units import Outcome, RunSpec, Unit
from framestyle.errors import PluginError
from framestyle.settings import Settings

WAIT = 0.05  # seconds the message loop waits before it looks for new units' messages too


class Done:
    """A unit's run ended."""


class Lost:
    """The worker died under the unit."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# What a unit's run hands back, message by message: a list of its events
# (and the worker's :class:`Where` first), then Done, Lost or a failed
# Outcome (the unit's own crash).
Deliver = Callable[[Any], None]


class Cluster(Protocol):
    def connect(self, settings: Settings) -> list[Placement]:
        """Join the cluster; the workers it has room for."""

    def nodes_now(self, settings: Settings) -> list[Placement]:
        """The workers the cluster has room for now: nodes join a cluster
        that grows (an autoscaler, ``ray start`` on another machine)."""

    def start(self, spec: RunSpec, weights: Any, layout: Sequence[Placement]) -> list[Any]:
        """A started worker per placement (handles), each knowing ``spec``;
        called again for the workers of nodes that joined."""

    def where(self, handles: Sequence[Any]) -> list[Where]:
        """Where each worker runs, once it has started (PluginError if one cannot)."""

    def probe(self, handles: Sequence[Any], token: Path, expected: str, paths: list[Path]) -> list[list[str]]:
        """What each worker's node does not see of the run's storage."""

    def run(self, handle: Any, unit: Unit, deliver: Deliver) -> None:
        """Start ``unit`` on the worker; its messages go to ``deliver``, from any thread."""

    def watch(self, handle: Any, back: Callable[[Where], None]) -> None:
        """Call ``back`` once the dead worker has been restarted."""

    def close(self) -> None:
        """Kill every worker; let go of the cluster."""


class RayCluster:
    """Workers as Ray actors (:class:`RayWorker`): restarted by Ray when
    they die, on another node if theirs is gone. ``worker``: another actor
    class with the same methods (the scale benchmark's stand-ins), built
    with ``worker_args``."""

    def __init__(self, worker: type | None = None, worker_args: tuple[Any, ...] | None = None) -> None:
        self.ray = import_ray()  # missing: a usage error before any work
        self.worker, self.worker_args = worker, worker_args
        self.joined = False  # this process called ray.init, so it shuts Ray down
        self.handles: list[Any] = []
        self.weights: list[Any] = []  # the driver's weights in Ray's object store, put once
        self.streams: dict[int, tuple[Any, Deliver]] = {}  # the units running, by their message stream
        self.lock = threading.Lock()
        self.reader: threading.Thread | None = None
        self.over = False

    def connect(self, settings: Settings) -> list[Placement]:
        self.joined = join(self.ray, settings.ray_address)
        return self.nodes_now(settings)

    def nodes_now(self, settings: Settings) -> list[Placement]:
        return worker_layout(self.ray.nodes(), settings.worker_cores)

    def start(self, spec: RunSpec, weights: Any, layout: Sequence[Placement]) -> list[Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # In a list, so that Ray hands each unit the reference, not the
        # weights: a worker fetches them once (again after a restart).
        if not self.weights:
            self.weights = [self.ray.put(weights)]
        if self.worker is None:
            from framestyle.engine.executors.ray.actor import RayWorker

            self.worker = RayWorker
        actor = self.ray.remote(self.worker)
        started = []
        for place in layout:
            # Soft: a worker whose node is gone restarts on another with room.
            options = {"num_cpus": place.cpus, "num_gpus": place.gpus, "max_restarts": -1, "max_task_retries": 0,
                       "scheduling_strategy": NodeAffinitySchedulingStrategy(place.node, soft=True)}
            args = self.worker_args if self.worker_args is not None else (spec, max(1, place.cpus), os.getcwd())
            started.append(actor.options(**options).remote(*args))
        self.handles += started
        return started

    def where(self, handles: Sequence[Any]) -> list[Where]:
        try:
            return [self.ray.get(handle.where.remote()) for handle in handles]
        except self.ray.exceptions.RayError as error:
            raise PluginError(f"a Ray worker could not start: {first_line(error)}") from None

    def probe(self, handles: Sequence[Any], token: Path, expected: str, paths: list[Path]) -> list[list[str]]:
        return self.ray.get([handle.probe.remote(token, expected, paths) for handle in handles])

    def run(self, handle: Any, unit: Unit, deliver: Deliver) -> None:
        generator = handle.run.remote(unit, self.weights)
        with self.lock:
            self.streams[id(generator)] = (generator, deliver)
            if self.reader is None:
                self.reader = threading.Thread(target=self.read, daemon=True, name="ray-messages")
                self.reader.start()

    def read(self) -> None:
        """One loop for every unit's messages: whichever are ready, passed
        on in turn (a thread each would cost the driver a switch a message)."""
        ray = self.ray
        while not self.over:
            with self.lock:
                generators = [generator for generator, _ in self.streams.values()]
            if not generators:
                time.sleep(WAIT)
                continue
            ready, _ = ray.wait(generators, num_returns=1, timeout=WAIT)
            if ready:  # and all the others ready by now
                ready, _ = ray.wait(generators, num_returns=len(generators), timeout=0)
            for generator in ready:
                self.pass_on(generator)

    def pass_on(self, generator: Any) -> None:
        """The unit's next message, or how it ended."""
        ray = self.ray
        _, deliver = self.streams[id(generator)]
        try:
            deliver(ray.get(next(generator)))
            return
        except StopIteration:
            ended: Any = Done()
        except ray.exceptions.RayActorError as error:
            ended = Lost(first_line(error))
        except ray.exceptions.RayTaskError as error:  # the unit's own crash: its inputs fail
            ended = Outcome("failed", message=first_line(error.cause or error))
        except Exception as error:
            ended = Lost(f"{type(error).__name__}: {error}")
        with self.lock:
            del self.streams[id(generator)]
        deliver(ended)

    def watch(self, handle: Any, back: Callable[[Where], None]) -> None:
        threading.Thread(target=self.wait_for_restart, args=(handle, back), daemon=True).start()

    def wait_for_restart(self, handle: Any, back: Callable[[Where], None]) -> None:
        """A dead worker may die again on its way back (its new node gone
        too), or wait for a node with room for ever: the run goes on without
        it, and kills it at its end."""
        ray = self.ray
        while not self.over:
            try:
                back(ray.get(handle.where.remote()))
                return
            except ray.exceptions.RayActorError:
                time.sleep(0.5)
            except (Exception, SystemExit):  # killed at the run's end, or Ray shut down under it
                return

    def close(self) -> None:
        self.over = True
        if self.reader is not None:  # it must not touch Ray once Ray is shut down: that ends the process
            self.reader.join()
        for handle in self.handles:
            with suppress(Exception):
                self.ray.kill(handle, no_restart=True)
        if self.joined:
            self.ray.shutdown()
            self.joined = False


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
