"""A simulated cluster of stand-in workers behind the ``ray`` executor's
:class:`~framestyle.engine.executors.ray.cluster.Cluster` methods, for the
scale benchmark: the driver, planner, dispatcher, retry logic and reporters
are the real ones; only the workers are not.

The workers live in one child process, a discrete-event loop on the real
clock: a unit "runs" for as long as its frames would take (seconds per
frame, times the run's time scale), and its worker sends the driver the
messages a real :class:`~framestyle.engine.executors.ray.actor.RayWorker`
sends, at the times it sends them: where it runs when the unit starts, then
once a ``TICK`` (scaled) the frame-level events since the last message with
the newest step of the frame in flight, then the rest when the unit ends.
The messages are pickled through a pipe, so the driver pays for reading
them as it pays Ray. Being in another process, the workers' costs never
count as the driver's.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framestyle.engine.executors.ray.cluster import Deliver, Done, Lost
from framestyle.engine.executors.ray.joining import Placement
from framestyle.engine.executors.ray.messages import TICK, Where
from framestyle.engine.units import AssembleVideo, EncodeChunk, Event, Outcome, RunSpec, Unit, VideoSegment, items_of
from framestyle.events import FrameEnd, FrameStart, SourceStart, Step
from framestyle.settings import Settings
from framestyle.types import SourceInfo


@dataclass(frozen=True)
class Pace:
    """How long a stand-in worker takes, in seconds of a real GPU's time,
    before the time scale."""

    image: float = 2.0  # an image, all its iterations
    cold_frame: float = 4.0  # a video's first frame, or the first of a segment
    warm_frame: float = 1.0  # a video frame warm-started from the previous one
    # A frame of a split video read back and encoded into its chunk, and joined by
    # stream copy: measured at 1080p on a 2-core CPU, not assumed (docs/performance/scale.md).
    assembly_frame: float = 0.07
    join_frame: float = 0.00036
    iterations: int = 300  # per image or cold frame (a step event each)
    scale: float = 1.0  # every duration above is multiplied by this (the run's time scale)


@dataclass(frozen=True)
class Faults:
    """Workers killed during a run: every ``1/fraction``-th of them, ``at``
    seconds after the first unit began, each back ``restart`` seconds later
    (as Ray restarts an actor), all on the workers' scaled clock."""

    fraction: float = 0.0
    at: float = 0.0
    restart: float = 0.0

    def killed(self, workers: int) -> list[int]:
        if self.fraction <= 0:
            return []
        every = max(1, round(1 / self.fraction))
        return list(range(0, workers, every))


@dataclass
class Timeline:
    """A unit's events on a worker, in order, at seconds from its start."""

    events: list[tuple[float, Event]] = field(default_factory=list)
    frames: list[tuple[float, float, Event]] = field(default_factory=list)  # (start, end, a Step) per frame
    seconds: float = 0.0


def timeline(unit: Unit, pace: Pace, kept: int = 0) -> Timeline:
    """The events a real worker's run of ``unit`` gives, and when; the first
    ``kept`` frames of a segment were kept by an earlier run, and are reused."""
    line = Timeline()
    scale = pace.scale
    if isinstance(unit, EncodeChunk):
        frames = unit.end - unit.first
        line.seconds = frames * pace.assembly_frame * scale
        line.events.append((line.seconds, Event(unit.item.number, Outcome("part", kind="video", frames=frames))))
        return line
    if isinstance(unit, AssembleVideo):
        frames = unit.segments[-1].end
        line.seconds = frames * (pace.join_frame if unit.chunks else pace.assembly_frame) * scale
        line.events.append((line.seconds, Event(unit.item.number, Outcome("done", kind="video", frames=frames))))
        return line
    for item in items_of(unit):
        info = unit.info if isinstance(unit, VideoSegment) else SourceInfo(item.path, "image", 512, 512)
        line.events.append((line.seconds, Event(item.number, SourceStart(item.number, item.total, item.path,
                                                                         item.output, info))))
        indices = range(unit.segment.start, unit.segment.end) if isinstance(unit, VideoSegment) else range(1)
        for position, index in enumerate(indices):
            cold, reused = position == 0, position < kept
            took = 0.0 if reused else (pace.image if info.kind == "image" else
                                       pace.cold_frame if cold else pace.warm_frame) * scale
            start, end = line.seconds, line.seconds + took
            line.events.append((start, Event(item.number, FrameStart(item.path, index, info.frame_count or 1,
                                                                     info.width, info.height, pace.iterations))))
            step = Event(item.number, Step(item.path, index, pace.iterations // 2, pace.iterations, 1.0, {}))
            line.frames.append((start, end, step))
            iterations = pace.iterations if cold else pace.iterations // 6
            line.events.append((end, Event(item.number, FrameEnd(item.path, index, iterations, took, 1.0,
                                                                  {"content": 0.5, "style": 0.5}, warm=not cold,
                                                                  reused=reused,
                                                                  warp_error=None if cold else 1e-4,
                                                                  source_warp_error=None if cold else 1e-4))))
            line.seconds = end
        status = "part" if isinstance(unit, VideoSegment) else "done"
        line.events.append((line.seconds, Event(item.number, Outcome(status, kind=info.kind, frames=len(indices),
                                                                     iterations=pace.iterations))))
    return line


# ------------------------------------------------------------------ the driver's side


class SimulatedCluster:
    """``workers`` stand-in workers on ``nodes`` simulated nodes."""

    def __init__(self, workers: int, pace: Pace, faults: Faults | None = None, nodes: int | None = None) -> None:
        self.workers, self.pace, self.faults = workers, pace, faults or Faults()
        self.nodes = nodes or max(1, workers // 8)  # 8 GPUs a node
        self.deliveries: dict[int, Deliver] = {}
        self.watchers: dict[int, Callable[[Where], None]] = {}  # dead workers, by number: who waits for them
        self.returned: set[int] = set()  # workers back before anyone watched for them
        self.runs = 0
        self.lock = threading.Lock()
        self.process: Any = None

    def connect(self, settings: Settings) -> list[Placement]:
        return self.nodes_now(settings)

    def nodes_now(self, settings: Settings) -> list[Placement]:
        return [Placement(f"node-{index % self.nodes}", 4, 1) for index in range(self.workers)]  # none join

    def start(self, spec: RunSpec, weights: Any, layout: Sequence[Placement]) -> list[Any]:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=simulate, args=(child, len(layout), self.pace, self.faults),
                                       daemon=True)
        self.process.start()
        child.close()
        self.reader = threading.Thread(target=self.read, daemon=True, name="simulated-cluster")
        self.reader.start()
        return list(range(len(layout)))

    def where(self, handles: Sequence[Any]) -> list[Where]:
        return [where_of(handle, self.nodes) for handle in handles]

    def probe(self, handles: Sequence[Any], token: Path, expected: str, paths: list[Path]) -> list[list[str]]:
        return [[] for _ in handles]

    def run(self, handle: Any, unit: Unit, deliver: Deliver) -> None:
        with self.lock:
            self.runs += 1
            self.deliveries[self.runs] = deliver
            self.pipe.send(("run", self.runs, handle, unit))

    def watch(self, handle: Any, back: Callable[[Where], None]) -> None:
        with self.lock:
            if handle not in self.returned:
                self.watchers[handle] = back
                return
            self.returned.discard(handle)
        back(where_of(handle, self.nodes))

    def read(self) -> None:
        while True:
            try:
                run, message = self.pipe.recv()
            except (EOFError, OSError):
                return
            if run == 0:  # the simulation's end
                return
            if run < 0:  # worker -run is back
                with self.lock:
                    back = self.watchers.pop(-run - 1, None)
                    if back is None:
                        self.returned.add(-run - 1)
                if back is not None:
                    back(where_of(-run - 1, self.nodes))
                continue
            deliver = self.deliveries[run]
            if isinstance(message, Done | Lost):
                del self.deliveries[run]
            deliver(message)

    def close(self) -> None:
        if self.process is None:
            return
        with self.lock:
            self.pipe.send(("close", 0, 0, None))
        self.reader.join(timeout=60)
        self.process.join(timeout=10)
        self.process = None


def where_of(worker: int, nodes: int) -> Where:
    return Where(f"node-{worker % nodes}", f"10.0.{worker % nodes // 250}.{worker % nodes % 250}",
                 f"sim-{worker % nodes}", worker)


# ------------------------------------------------------------------ the workers' side


@dataclass
class Running:
    run: int
    line: Timeline
    started: float
    sent_events: int = 0  # events of line.events already sent
    unit: Unit | None = None


class Simulation:
    """Every stand-in worker, in one loop on the real clock."""

    def __init__(self, pipe: Any, workers: int, pace: Pace, faults: Faults) -> None:
        self.pipe, self.pace, self.tick, self.faults = pipe, pace, TICK * pace.scale, faults
        self.queued: list[deque[tuple[int, Unit]]] = [deque() for _ in range(workers)]
        self.running: list[Running | None] = [None] * workers
        self.dead = [False] * workers
        self.kept: dict[str, int] = {}  # a segment's frames kept by a run that died, by unit
        self.due: list[tuple[float, int, int]] = []  # (when, worker, run): the worker's next message
        self.nodes = max(1, workers // 8)
        self.workers = workers
        self.faults_due = False

    def submit(self, run: int, worker: int, unit: Unit) -> None:
        if self.dead[worker]:  # sent before the driver heard: it never starts
            self.send(run, Lost("the worker is dead"))
            return
        self.queued[worker].append((run, unit))
        if self.running[worker] is None:
            self.begin(worker, time.monotonic())

    def begin(self, worker: int, now: float) -> None:
        if self.faults.fraction and not self.faults_due:  # the first unit: the faults' clock starts
            self.faults_due = True
            heapq.heappush(self.due, (now + self.faults.at, -1, 0))
        run, unit = self.queued[worker].popleft()
        line = timeline(unit, self.pace, self.kept.get(unit.uid, 0))
        self.running[worker] = Running(run, line, now, unit=unit)
        self.send(run, [where_of(worker, self.nodes)])
        heapq.heappush(self.due, (now + min(self.tick, line.seconds), worker, run))

    def kill(self, now: float) -> None:
        """The faults: each worker's unit and queued units lost, the worker back after ``restart``."""
        for worker in self.faults.killed(self.workers):
            state = self.running[worker]
            if state is not None:
                elapsed = now - state.started
                kept = sum(1 for _, end, _ in state.line.frames if end <= elapsed)
                if isinstance(state.unit, VideoSegment):
                    self.kept[state.unit.uid] = max(self.kept.get(state.unit.uid, 0), kept)
                self.send(state.run, Lost("killed by the benchmark"))
            for run, _ in self.queued[worker]:
                self.send(run, Lost("killed by the benchmark"))
            self.running[worker], self.queued[worker], self.dead[worker] = None, deque(), True
            heapq.heappush(self.due, (now + self.faults.restart, -2 - worker, 0))

    def message(self, worker: int, run: int, now: float) -> None:
        """The worker's message due now; at the unit's end, its last, and the next unit."""
        if worker == -1:
            self.kill(now)
            return
        if worker < -1:  # back after its restart
            self.dead[-2 - worker] = False
            self.send(-1 - (-2 - worker), None)
            return
        state = self.running[worker]
        if state is None or state.run != run:  # the unit died with its worker
            return
        elapsed = now - state.started
        ended = elapsed >= state.line.seconds
        events = state.line.events
        upto = len(events) if ended else next((i for i in range(state.sent_events, len(events))
                                               if events[i][0] > elapsed), len(events))
        batch = [event for _, event in events[state.sent_events:upto]]
        state.sent_events = upto
        if not ended:  # the newest step of the frame in flight
            batch += [step for start, end, step in state.line.frames if start <= elapsed < end][:1]
        if batch:
            self.send(state.run, batch)
        if not ended:
            heapq.heappush(self.due, (now + min(self.tick, state.line.seconds - elapsed), worker, state.run))
            return
        self.send(state.run, Done())
        self.running[worker] = None
        if self.queued[worker]:
            self.begin(worker, now)

    def send(self, run: int, message: Any) -> None:
        self.pipe.send((run, message))

    def loop(self) -> None:
        while True:
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, worker, run = heapq.heappop(self.due)
                self.message(worker, run, now)
            wait = (self.due[0][0] - now) if self.due else None
            if self.pipe.poll(wait):
                command, run, worker, unit = self.pipe.recv()
                if command == "close":
                    self.pipe.send((0, None))
                    return
                self.submit(run, worker, unit)


def simulate(pipe: Any, workers: int, pace: Pace, faults: Faults) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    Simulation(pipe, workers, pace, faults).loop()


# ------------------------------------------------------------------ stand-ins on a real Ray cluster


class StandInWorker:
    """A Ray actor with :class:`~framestyle.engine.executors.ray.actor.RayWorker`'s
    methods whose units take their :class:`Pace` in sleep: Ray's own costs,
    real, to check the simulation against (``framestyle bench scale``'s
    ``mode`` ``ray``). No torch, so that a small machine holds a few dozen."""

    def __init__(self, pace: Pace) -> None:
        import socket

        from framestyle.engine.executors.ray.messages import node_of_this_process

        self.pace = pace
        self.where_ = Where(*node_of_this_process(), socket.gethostname(), os.getpid())

    def where(self) -> Where:
        return self.where_

    def probe(self, token: Path, expected: str, paths: list[Path]) -> list[str]:
        return []

    def run(self, unit: Unit, weights: Any) -> Any:
        from framestyle.engine.executors.ray.messages import Batch

        yield [self.where_]
        line, start = timeline(unit, self.pace), time.monotonic()
        batch = Batch(TICK * self.pace.scale)
        for at, event in line.events:
            while (now := time.monotonic() - start) < at:
                due = batch.due()
                if due == 0:
                    yield batch.take()
                    continue
                time.sleep(min(at - now, self.pace.scale * TICK if due is None else due))
                for step in [step for begun, end, step in line.frames if begun <= now < end][:1]:
                    batch.add(step)  # the newest step of the frame in flight
            batch.add(event)
        if batch.events:
            yield batch.take()
