"""The ``ray`` executor: a plan's units on a Ray cluster (``--executor ray``).

Workers are Ray actors (:class:`framestyle.engine.executors.ray.actor.RayWorker`): one per
GPU, or per ``--worker-cores`` cores of a node without one. Each loads the
network once, from the weights the driver resolved and put in the object
store, and holds at most ``QUEUED`` units, so a slow node never hoards work.
Inputs and outputs live on storage that every node sees at the same path,
checked on each node at the start; workers write outputs themselves,
atomically, and only small events travel back to the driver, which turns
them into progress, records and reports exactly as for the local executor.

A worker that dies (its process killed, its node gone) is restarted by Ray,
and its units run again on whichever worker is free, reusing every kept
frame and finished output; an input whose worker dies ``ATTEMPTS`` times
fails, and the run goes on. Ctrl-C (or SIGTERM) cancels the queued units and
kills the running ones: nothing half-written ever has a final name.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framestyle.engine.executors import SUCCEEDED, Fatal, Ledger, Session
from framestyle.engine.executors.ray.actor import RayWorker, Where
from framestyle.engine.executors.ray.joining import Placement, import_ray, join, worker_layout
from framestyle.engine.units import Event, ImageGroup, Item, Outcome, Unit, VideoSegment, WholeVideo, items_of
from framestyle.errors import PluginError, UsageError
from framestyle.settings import Settings

log = logging.getLogger("framestyle")

ATTEMPTS = 3  # runs of a unit whose worker dies before its inputs fail
QUEUED = 2  # units sent to a worker at once: the one it runs and the next
LONELY_SECONDS = 120.0  # work left and no worker alive this long: the rest fails


@dataclass
class Slot:
    """A worker as the driver follows it."""

    handle: Any
    placement: Placement
    where: Where | None = None
    running: int = 0
    alive: bool = True


@dataclass
class Attempt:
    """One run of a unit on a worker."""

    unit: Unit
    slot: Slot
    number: int  # 1 for the first run
    started: bool = False  # the worker began it (a unit still queued there did not kill it)


@dataclass(frozen=True)
class Lost:
    """The worker died under the unit."""

    reason: str


class Done:
    """The unit's run ended."""


class RayExecutor:
    def __init__(self) -> None:
        self.ray = import_ray()  # missing: a usage error before any work
        self.layout: list[Placement] = []
        self.slots: list[Slot] = []
        self.placed: list[tuple[str, Where]] = []  # (unit, worker) as they started: -v logs them
        self.joined = False  # this executor called ray.init, so it shuts Ray down
        self.over = False  # the run ended: watchers stop

    # the cluster ------------------------------------------------------------------

    def connect(self, settings: Settings) -> int:
        """Join the cluster (``--ray-address``, else the running one, else
        a local one of this machine's cores) and plan its workers."""
        self.joined = join(self.ray, settings.ray_address)
        self.layout = worker_layout(self.ray.nodes(), settings.worker_cores)
        if not self.layout:
            raise UsageError("the Ray cluster has no node with a CPU or GPU for a worker")
        nodes = len({place.node for place in self.layout})
        log.info("Ray: %d worker(s) on %d node(s)", len(self.layout), nodes)
        return len(self.layout)

    def start_workers(self, session: Session) -> None:
        """The workers, each with the driver's weights from the object store;
        an error in one's start (a plugin missing on its node) ends the run."""
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # In a list, so that Ray hands each unit the reference, not the
        # weights: a worker fetches them once (again after a restart).
        self.weights = [ray.put(session.context().runtime.weights)]
        actor = ray.remote(RayWorker)
        for place in self.layout:
            # Soft: a worker whose node is gone restarts on another with room.
            options = {"num_cpus": place.cpus, "num_gpus": place.gpus, "max_restarts": -1, "max_task_retries": 0,
                       "scheduling_strategy": NodeAffinitySchedulingStrategy(place.node, soft=True)}
            handle = actor.options(**options).remote(session.spec, max(1, place.cpus), os.getcwd())
            self.slots.append(Slot(handle, place))
        for slot in self.slots:
            try:
                slot.where = ray.get(slot.handle.where.remote())
            except ray.exceptions.RayError as error:
                raise PluginError(f"a Ray worker could not start: {first_line(error)}") from None

    def probe(self, settings: Settings) -> None:
        """Each node must see the inputs, the styles and the very output
        folder of the driver (a token file written here, read there)."""
        assert settings.output is not None
        output = Path(settings.output)
        folder = output if output.is_dir() or not output.suffix else output.parent
        folder.mkdir(parents=True, exist_ok=True)
        token, expected = folder / f".framestyle-probe-{uuid.uuid4().hex}", uuid.uuid4().hex
        token.write_text(expected)
        paths = [*settings.inputs, *settings.style]
        try:
            one_per_node = {slot.placement.node: slot for slot in self.slots}.values()
            found = self.ray.get([slot.handle.probe.remote(token, expected, paths) for slot in one_per_node])
        finally:
            token.unlink(missing_ok=True)
        for slot, problems in zip(one_per_node, found, strict=True):
            if problems:
                raise UsageError(f"Ray node {slot.where} does not see {problems[0]}: inputs and outputs must be "
                                 "on storage that every node mounts at the same path")

    # the run ------------------------------------------------------------------------

    def run(self, units: Sequence[Unit], session: Session) -> None:
        try:
            self.start_workers(session)
            self.probe(session.spec.settings)
            self.work(units, session)
        finally:  # done, interrupted or failed: no worker runs on
            self.close()

    def close(self) -> None:
        self.over = True
        for slot in self.slots:
            with suppress(Exception):
                self.ray.kill(slot.handle, no_restart=True)
        if self.joined:
            self.ray.shutdown()
            self.joined = False

    def work(self, units: Sequence[Unit], session: Session) -> None:
        self.session, self.ledger = session, Ledger(units)
        self.ready = deque(unit for unit in units if not unit.needs)
        self.waiting = [unit for unit in units if unit.needs]
        self.running: dict[int, Attempt] = {}
        self.tries: dict[str, int] = {}  # runs of each unit so far
        self.arrivals: queue.Queue[tuple[Attempt | Slot, Any]] = queue.Queue()
        alone_since = time.monotonic()
        while True:
            if self.session.stopping():  # -x after a failure: what has not started never will
                self.ready.clear()
            self.send()
            if not self.running and not self.ready:
                return
            if any(slot.alive for slot in self.slots):
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > LONELY_SECONDS:
                self.give_up()
                return
            try:
                source, message = self.arrivals.get(timeout=5)
            except queue.Empty:
                continue
            if isinstance(source, Slot):
                self.restarted(source, message)
            else:
                self.arrived(source, message)

    def send(self) -> None:
        """Units to workers with room, the least busy first. A worker gets a
        second unit to start as soon as its first ends only while more units
        wait than there are workers: near the end, each waits here for the
        first worker free, so that no worker holds two while another idles."""
        while self.ready:
            alive = [slot for slot in self.slots if slot.alive]
            depth = QUEUED if len(self.ready) > len(alive) else 1
            slot = min((slot for slot in alive if slot.running < depth), key=lambda slot: slot.running, default=None)
            if slot is None:
                return
            unit = self.ready.popleft()
            attempt = Attempt(unit, slot, self.tries.get(unit.uid, 0) + 1)
            self.tries[unit.uid] = attempt.number
            slot.running += 1
            self.running[id(attempt)] = attempt
            threading.Thread(target=self.relay, args=(attempt,), daemon=True, name=f"ray-{unit.uid}").start()

    def relay(self, attempt: Attempt) -> None:
        """Pass on the unit's messages as they come, then how it ended."""
        ray = self.ray
        try:
            for reference in attempt.slot.handle.run.remote(attempt.unit, self.weights):
                for message in ray.get(reference):
                    self.arrivals.put((attempt, message))
            self.arrivals.put((attempt, Done()))
        except ray.exceptions.RayActorError as error:
            self.arrivals.put((attempt, Lost(first_line(error))))
        except ray.exceptions.RayTaskError as error:  # the unit's own crash: its inputs fail
            self.arrivals.put((attempt, Outcome("failed", message=first_line(error.cause or error))))
        except BaseException as error:
            self.arrivals.put((attempt, Lost(f"{type(error).__name__}: {error}")))

    def arrived(self, attempt: Attempt, message: Any) -> None:
        unit = attempt.unit
        if isinstance(message, Where):
            attempt.started = True
            self.placed.append((unit.uid, message))
            log.debug("%s: %s on %s", items_of(unit)[0].path, describe(unit), message)
        elif isinstance(message, Event):
            self.note(unit, message)
        elif isinstance(message, Fatal):
            raise message.error()
        elif isinstance(message, Outcome):
            self.ended(attempt)
            self.fail(unit, message.message)
        elif isinstance(message, Lost):
            self.ended(attempt)
            self.lost(attempt, message.reason)
        else:  # Done: the unit ran to its end
            self.ended(attempt)

    def note(self, unit: Unit, event: Event) -> None:
        self.session.emit(event)
        self.ledger.note(unit.uid, event)
        if isinstance(event.payload, Outcome) and event.payload.status not in SUCCEEDED:
            # The input failed: its queued units go; the units that need them are let go below.
            self.ready = deque(other for other in self.ready if event.item not in numbers(other))
        self.ready.extend(self.ledger.release(self.waiting))

    def ended(self, attempt: Attempt) -> None:
        if self.running.pop(id(attempt), None) is not None:
            attempt.slot.running -= 1


    # faults -------------------------------------------------------------------------

    def lost(self, attempt: Attempt, reason: str) -> None:
        """The worker died: watch for its restart, and run the unit again,
        its images one by one (one of them may be what kills it), until it
        has died ``ATTEMPTS`` times."""
        slot, unit = attempt.slot, attempt.unit
        if slot.alive:
            slot.alive = False
            threading.Thread(target=self.watch, args=(slot,), daemon=True).start()
        left = self.left(unit)
        if not left:
            return
        if not attempt.started:  # it waited behind the unit that died with the worker: not its fault
            self.tries[unit.uid] = attempt.number - 1
            self.ready.appendleft(unit)
            return
        if attempt.number >= ATTEMPTS:
            self.fail(unit, f"its worker died {attempt.number} times, the last on {slot.where} ({reason})")
            return
        log.warning("%s: its worker %s died (%s); running it again", left[0].path, slot.where, reason)
        retries = [ImageGroup((item,)) for item in left] if isinstance(unit, ImageGroup) else [unit]
        for retry in retries:
            self.ledger.left.setdefault(retry.uid, numbers(retry))
            self.tries[retry.uid] = attempt.number
        self.ready.extendleft(reversed(retries))

    def watch(self, slot: Slot) -> None:
        """Wait for Ray to restart a dead worker, which may die again on its
        way back (its new node gone too), or wait for a node with room for
        ever: the run goes on without it, and kills it at its end."""
        ray = self.ray
        while not self.over:
            try:
                self.arrivals.put((slot, ray.get(slot.handle.where.remote())))
                return
            except ray.exceptions.RayActorError:
                time.sleep(0.5)
            except Exception:  # killed at the run's end
                return

    def restarted(self, slot: Slot, where: Where) -> None:
        log.info("Ray worker restarted: %s", where)
        slot.where, slot.alive = where, True

    def left(self, unit: Unit) -> list[Item]:
        return [item for item in items_of(unit) if item.number in self.ledger.left.get(unit.uid, ())]

    def fail(self, unit: Unit, message: str) -> None:
        for item in self.left(unit):
            self.note(unit, Event(item.number, Outcome("failed", message=message)))

    def give_up(self) -> None:
        log.error("no Ray worker has been alive for %d s", LONELY_SECONDS)
        for unit in [*self.ready, *(attempt.unit for attempt in self.running.values())]:
            self.fail(unit, "no Ray worker was left to run it")


def numbers(unit: Unit) -> set[int]:
    return {item.number for item in items_of(unit)}


def describe(unit: Unit) -> str:
    if isinstance(unit, ImageGroup):
        return f"{len(unit.items)} image(s)"
    if isinstance(unit, VideoSegment):
        return f"frames {unit.segment.owned + 1}-{unit.segment.end}"
    return "the whole video" if isinstance(unit, WholeVideo) else "its assembly"


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
