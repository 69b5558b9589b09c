"""The ``subprocess`` executor: each unit in a fresh Python process
(:mod:`framestyle.engine.executors.child`)."""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence

from framestyle.engine.executors import Fatal, Ledger, Session
from framestyle.engine.units import Event, Outcome, RunSpec, Unit, items_of


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
        ready = deque(unit for unit in units if not unit.needs)  # the rest once what they need is done
        running: set[str] = set()
        arrivals: queue.Queue[tuple[str, Event | BaseException | None]] = queue.Queue()
        try:
            while True:
                while ready and len(running) < self.workers and not session.stopping():
                    unit = ready.popleft()
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
                    ready.extend(ledger.note(uid, arrival))
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
        process = subprocess.Popen([sys.executable, "-m", "framestyle.engine.executors.child"], stdin=subprocess.PIPE,
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
