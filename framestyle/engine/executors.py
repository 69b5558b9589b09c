"""Executors: what runs a plan's units. Registered by plugins
(``register_executors``) and chosen with ``--executor NAME``.

An executor gets the units in the order they should start and a
:class:`Session`, and runs every unit whose ``needs`` finished well, with
:mod:`framestyle.engine.unitrun` (in this process or another), handing each event
to ``session.emit`` as it comes. It returns when all are done; a Ctrl-C
passes through it, with nothing left open.

Two methods are optional. ``connect(settings) -> int`` is called before
the plan is made: it joins what the executor runs on (a cluster) and says
how many units it runs at once, so that a video is split into that many
segments. ``close()`` lets go of what ``connect`` took when the run ends
before ``run`` (planning failed). The ``ray`` executor
(:mod:`framestyle.engine.cluster`) has both.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from framestyle.engine.units import Event, Outcome, RunSpec, Unit, items_of
from framestyle.errors import PluginError, UsageError

# The statuses with which a unit leaves its inputs for the units that need it.
FINISHED = ("done", "part")


class Session(Protocol):
    """The driver's side of a run, as executors see it."""

    spec: RunSpec

    def context(self) -> Any:
        """This process's :class:`~framestyle.engine.context.UnitContext` (built once)."""

    def emit(self, event: Event) -> None:
        """Hand one event to the driver (observer hooks, records, progress)."""

    def stopping(self) -> bool:
        """True once no new input may start (``-x`` after a failure)."""


class Ledger:
    """Which units finished well, from their events, to release the units
    that need them."""

    def __init__(self, units: Sequence[Unit]) -> None:
        self.left = {unit.uid: {item.number for item in items_of(unit)} for unit in units}
        self.failed: set[str] = set()

    def note(self, uid: str, event: Event) -> None:
        if isinstance(event.payload, Outcome) and event.item in self.left.get(uid, ()):
            self.left[uid].discard(event.item)
            if event.payload.status not in FINISHED:
                self.failed.add(uid)

    def finished(self, uid: str) -> bool:
        return not self.left.get(uid) and uid not in self.failed

    def ready(self, unit: Unit) -> bool | None:
        """True: its needs finished well; False: one did not; None: not yet."""
        if any(need in self.failed for need in unit.needs):
            return False
        return True if all(self.finished(need) for need in unit.needs) else None

    def release(self, waiting: list[Unit]) -> list[Unit]:
        """The units of ``waiting`` whose needs finished well, in order; they
        and those whose needs failed leave ``waiting``."""
        released = []
        for unit in list(waiting):
            ready = self.ready(unit)
            if ready is not None:
                waiting.remove(unit)
            if ready:
                released.append(unit)
        return released


class LocalExecutor:
    """Every unit in this process, as one batch: images of one size and a
    video's segments optimised side by side, decoding read ahead, the batch
    halved on out-of-memory errors, Ctrl-C leaving finished work on disk."""

    def run(self, units: Sequence[Unit], session: Session) -> None:
        from framestyle.engine.batch import Scheduler

        context = session.context()
        context.stopping = session.stopping
        self.ledger = Ledger(units)
        self.streams: list[Any] = []
        self.waiting: list[Unit] = []
        scheduler = Scheduler(context.runtime.encode, session.spec.capacity, session.spec.lanes)
        try:
            scheduler.run(self.feed(units, context, session))
        finally:  # done, or interrupted: nothing stays open
            for stream in self.streams:
                stream.drop()

    def feed(self, units: Sequence[Unit], context: Any, session: Session) -> Iterator[Any]:
        """The units' streams, each unit started when the batch has room for
        it; one that needs others waits for them."""
        for unit in units:
            if session.stopping():
                return
            if unit.needs:
                self.waiting.append(unit)
                self.start_ready(context, session)
                continue
            yield from self.start(unit, context, session)

    def start(self, unit: Unit, context: Any, session: Session) -> list[Any]:
        from framestyle.engine.unitrun import unit_streams

        streams = unit_streams(unit, context, self.emitter(unit, context, session))
        self.streams += streams
        return streams

    def emitter(self, unit: Unit, context: Any, session: Session) -> Callable[[Event], None]:
        def emit(event: Event) -> None:
            session.emit(event)
            self.ledger.note(unit.uid, event)
            if isinstance(event.payload, Outcome) and event.payload.status not in FINISHED:
                for stream in self.streams:  # the input's other units stop, and let go of its files
                    if stream.item.number == event.item:
                        stream.drop()
            elif self.ledger.finished(unit.uid):
                self.start_ready(context, session)

        return emit

    def start_ready(self, context: Any, session: Session) -> None:
        """Start the waiting units whose needs finished (an assembly has no
        frames: it runs to its end here); forget those whose needs failed."""
        for unit in self.ledger.release(self.waiting):
            self.start(unit, context, session)


class SubprocessExecutor:
    """Each unit in a fresh Python process of its own, up to ``workers`` at
    once (one per two cores, at least two): the unit and the run's spec
    pickled to it, its events pickled back and handed to the driver on this
    thread. Slow (every process loads the network), and the proof that a
    unit needs nothing of the process that planned it: a video's segments
    even keep their frames in one store at the same time."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(2, (os.cpu_count() or 2) // 2)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, units: Sequence[Unit], session: Session) -> None:
        ledger = Ledger(units)
        waiting = list(units)
        running: set[str] = set()
        arrivals: queue.Queue[tuple[str, Event | BaseException | None]] = queue.Queue()
        try:
            while True:
                for unit in list(waiting):
                    if len(running) >= self.workers or session.stopping():
                        break
                    ready = ledger.ready(unit)
                    if ready is not None:
                        waiting.remove(unit)
                    if ready:
                        running.add(unit.uid)
                        threading.Thread(target=self.relay, args=(unit, session.spec, arrivals), daemon=True,
                                         name=f"framestyle-{unit.uid}").start()
                if not running:
                    return  # all done, or the rest wait on units that will not run (-x)
                uid, arrival = arrivals.get()
                if arrival is None:
                    running.discard(uid)
                elif isinstance(arrival, BaseException):
                    raise arrival
                else:
                    ledger.note(uid, arrival)
                    session.emit(arrival)
        finally:  # interrupted, or a usage error: no worker outlives the run
            for process in list(self.processes.values()):
                process.kill()

    def relay(self, unit: Unit, spec: RunSpec, arrivals: queue.Queue[tuple[str, Event | BaseException | None]]) -> None:
        """Run ``unit`` in its process and pass on its events, then None."""
        try:
            for event in self.events(unit, spec):
                arrivals.put((unit.uid, event))
        except BaseException as error:  # raised again on the driver's thread
            arrivals.put((unit.uid, error))
        arrivals.put((unit.uid, None))

    def events(self, unit: Unit, spec: RunSpec) -> Iterator[Event]:
        process = subprocess.Popen([sys.executable, "-m", "framestyle.engine.worker"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE)
        self.processes[unit.uid] = process
        assert process.stdin is not None and process.stdout is not None
        ended: set[int] = set()
        try:
            pickle.dump((spec, unit), process.stdin)
            process.stdin.close()
            while True:
                try:
                    message = pickle.load(process.stdout)
                except EOFError:
                    break
                if isinstance(message, Fatal):
                    raise message.error()
                if isinstance(message.payload, Outcome):
                    ended.add(message.item)
                yield message
        except BaseException:
            process.kill()
            raise
        finally:
            code = process.wait()
            self.processes.pop(unit.uid, None)
        for item in items_of(unit):
            if item.number not in ended:
                yield Event(item.number, Outcome("failed", message=f"its worker process ended with code {code}"))


class Fatal:
    """An error that ends the whole run, raised again in the driver."""

    KINDS: dict[str, type[Exception]] = {"UsageError": UsageError, "PluginError": PluginError}

    def __init__(self, error: Exception) -> None:
        self.kind, self.message = type(error).__name__, str(error)

    def error(self) -> Exception:
        return self.KINDS.get(self.kind, PluginError)(self.message)
