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
fails, and the run goes on. Nodes that join the cluster while units wait
(an autoscaler's, ``ray start`` on another machine) get workers of their
own, once they are seen to reach the run's storage. Ctrl-C (or SIGTERM)
cancels the queued units and kills the running ones: nothing half-written
ever has a final name.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framestyle.engine.executors import SUCCEEDED, Fatal, Ledger, Session
from framestyle.engine.executors.ray.cluster import Cluster, Done, Lost, RayCluster
from framestyle.engine.executors.ray.joining import Placement
from framestyle.engine.executors.ray.messages import Where
from framestyle.engine.units import Event, ImageGroup, Item, Outcome, Unit, VideoSegment, WholeVideo, items_of
from framestyle.errors import PluginError, UsageError
from framestyle.settings import Settings

log = logging.getLogger("framestyle")

ATTEMPTS = 3  # runs of a unit whose worker dies before its inputs fail
QUEUED = 2  # units sent to a worker at once: the one it runs and the next
LONELY_SECONDS = 120.0  # work left and no worker alive this long: the rest fails
PLACED = 10_000  # units whose worker is remembered (tests, -v): not a million
JOIN_SECONDS = 10.0  # how often, while units wait, the cluster is asked for nodes that joined


@dataclass(eq=False)
class Slot:
    """A worker as the driver follows it."""

    handle: Any
    placement: Placement
    where: Where | None = None
    running: int = 0
    alive: bool = True


@dataclass(eq=False)
class Attempt:
    """One run of a unit on a worker."""

    unit: Unit
    slot: Slot
    number: int  # 1 for the first run
    started: bool = False  # the worker began it (a unit still queued there did not kill it)


class RayExecutor:
    def __init__(self, cluster: Cluster | None = None) -> None:
        self.cluster = cluster if cluster is not None else RayCluster()
        self.layout: list[Placement] = []
        self.slots: list[Slot] = []
        self.placed: deque[tuple[str, Where]] = deque(maxlen=PLACED)  # (unit, worker), the latest started
        self.reruns = 0  # units run again after their worker died
        self.messages = 0  # from the workers, each a list of events: the dispatcher's load

    # the cluster ------------------------------------------------------------------

    def connect(self, settings: Settings) -> int:
        """Join the cluster (``--ray-address``, else the running one, else
        a local one of this machine's cores) and plan its workers."""
        self.layout = self.cluster.connect(settings)
        if not self.layout:
            raise UsageError("the Ray cluster has no node with a CPU or GPU for a worker")
        nodes = len({place.node for place in self.layout})
        log.info("Ray: %d worker(s) on %d node(s)", len(self.layout), nodes)
        return len(self.layout)

    def start_workers(self, session: Session, layout: list[Placement]) -> list[Slot]:
        """Workers for ``layout``, each with the driver's weights; an error
        in one's start (a plugin missing on its node) ends the run."""
        handles = self.cluster.start(session.spec, session.context().runtime.weights, layout)
        slots = [Slot(handle, place) for handle, place in zip(handles, layout, strict=True)]
        for slot, where in zip(slots, self.cluster.where(handles), strict=True):
            slot.where = where
        return slots

    def unseeing(self, settings: Settings, slots: list[Slot]) -> dict[str, str]:
        """The nodes of ``slots`` that do not see the inputs, the styles and
        the very output folder of the driver (a token file written here,
        read there), with what each does not see first."""
        assert settings.output is not None
        output = Path(settings.output)
        folder = output if output.is_dir() or not output.suffix else output.parent
        folder.mkdir(parents=True, exist_ok=True)
        token, expected = folder / f".framestyle-probe-{uuid.uuid4().hex}", uuid.uuid4().hex
        token.write_text(expected)
        paths = [*settings.inputs, *settings.style]
        one_per_node = list({slot.placement.node: slot for slot in slots}.values())
        try:
            found = self.cluster.probe([slot.handle for slot in one_per_node], token, expected, paths)
        finally:
            token.unlink(missing_ok=True)
        return {slot.placement.node: f"Ray node {slot.where} does not see {problems[0]}"
                for slot, problems in zip(one_per_node, found, strict=True) if problems}

    def probe(self, settings: Settings) -> None:
        """Each node must see the run's storage, or the run does not start."""
        for problem in self.unseeing(settings, self.slots).values():
            raise UsageError(f"{problem}: inputs and outputs must be on storage that every node mounts at "
                             "the same path")

    def grow(self, settings: Settings) -> None:
        """Workers on the nodes that joined the cluster since the run began:
        they take units from now on (a node whose workers cannot start, or
        that does not see the run's storage, is left out, with a warning)."""
        known = {place.node for place in self.layout}
        fresh = [place for place in self.cluster.nodes_now(settings) if place.node not in known]
        if not fresh:
            return
        self.layout += fresh  # asked once: a node left out stays out
        try:
            slots = self.start_workers(self.session, fresh)
        except PluginError as error:  # at the start it ends the run; the run under way goes on without them
            log.warning("%s; the joined node(s) are left out", error)
            return
        blind = self.unseeing(settings, slots)
        for problem in blind.values():
            log.warning("%s; its workers are left out", problem)
        slots = [slot for slot in slots if slot.placement.node not in blind]
        self.slots += slots
        self.room[0].extend(slots)
        self.alive += len(slots)
        if slots:
            log.info("Ray: %d worker(s) joined on %d new node(s)", len(slots),
                     len({slot.placement.node for slot in slots}))

    # the run ------------------------------------------------------------------------

    def run(self, units: Sequence[Unit], session: Session) -> None:
        try:
            self.slots = self.start_workers(session, self.layout)
            self.probe(session.spec.settings)
            self.work(units, session)
        finally:  # done, interrupted or failed: no worker runs on
            self.close()

    def close(self) -> None:
        self.cluster.close()

    def work(self, units: Sequence[Unit], session: Session) -> None:
        """One loop for every worker: what arrived is handled in the order
        it came, then units go to workers with room. Its work per message
        does not grow with the number of workers."""
        self.session, self.ledger = session, Ledger(units)
        self.ready = deque(unit for unit in units if not unit.needs)
        self.running: set[Attempt] = set()
        self.tries: dict[str, int] = {}  # runs of each unit so far
        self.arrivals: queue.Queue[tuple[Attempt | Slot, Any]] = queue.Queue()
        # Workers with room, by how many units they hold (0, then 1); an
        # entry whose worker has since changed is passed over when met.
        self.room: list[deque[Slot]] = [deque(self.slots), deque()]
        self.alive = len(self.slots)
        alone_since = asked = time.monotonic()
        while True:
            if self.session.stopping():  # -x after a failure: what has not started never will
                self.ready.clear()
            self.send()
            if not self.running and not self.ready:
                return
            if self.alive:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > LONELY_SECONDS:
                self.give_up()
                return
            if self.ready and time.monotonic() - asked > JOIN_SECONDS:
                self.grow(session.spec.settings)
                asked = time.monotonic()
                self.send()
            try:
                arrived = [self.arrivals.get(timeout=5)]
            except queue.Empty:
                continue
            while True:  # all that came meanwhile, before the next dispatch
                try:
                    arrived.append(self.arrivals.get_nowait())
                except queue.Empty:
                    break
            for source, message in arrived:
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
            slot = self.with_room(QUEUED if len(self.ready) > self.alive else 1)
            if slot is None:
                return
            unit = self.ready.popleft()
            attempt = Attempt(unit, slot, self.tries.get(unit.uid, 0) + 1)
            self.tries[unit.uid] = attempt.number
            self.running.add(attempt)
            self.holds(slot, slot.running + 1)
            self.cluster.run(slot.handle, unit, self.deliverer(attempt))

    def deliverer(self, attempt: Attempt) -> Callable[[Any], None]:
        """Where the worker's messages about ``attempt`` go, from any thread."""
        return lambda message: self.arrivals.put((attempt, message))

    def with_room(self, depth: int) -> Slot | None:
        for held in range(depth):
            room = self.room[held]
            while room:
                slot = room.popleft()
                if slot.alive and slot.running == held:
                    return slot
        return None

    def holds(self, slot: Slot, running: int) -> None:
        slot.running = running
        if slot.alive and running < QUEUED:
            self.room[running].append(slot)

    def arrived(self, attempt: Attempt, message: Any) -> None:
        unit = attempt.unit
        if isinstance(message, list):
            self.messages += 1
            for part in message:
                self.part(attempt, part)
        elif isinstance(message, Outcome):  # the unit's own crash
            self.ended(attempt)
            self.fail(unit, message.message)
        elif isinstance(message, Lost):
            self.ended(attempt)
            self.lost(attempt, message.reason)
        elif isinstance(message, Done):
            self.ended(attempt)
            self.tries.pop(unit.uid, None)

    def part(self, attempt: Attempt, part: Any) -> None:
        unit = attempt.unit
        if isinstance(part, Where):
            attempt.started = True
            self.placed.append((unit.uid, part))
            log.debug("%s: %s on %s", items_of(unit)[0].path, describe(unit), part)
        elif isinstance(part, Event):
            self.note(unit, part)
        elif isinstance(part, Fatal):
            raise part.error()

    def note(self, unit: Unit, event: Event) -> None:
        self.session.emit(event)
        self.ready.extend(self.ledger.note(unit.uid, event))
        if isinstance(event.payload, Outcome) and event.payload.status not in SUCCEEDED:
            # The input failed: its queued units go (the units that need them went with the ledger).
            self.ready = deque(other for other in self.ready if event.item not in numbers(other))

    def ended(self, attempt: Attempt) -> None:
        if attempt in self.running:
            self.running.discard(attempt)
            self.holds(attempt.slot, attempt.slot.running - 1)

    # faults -------------------------------------------------------------------------

    def lost(self, attempt: Attempt, reason: str) -> None:
        """The worker died: watch for its restart, and run the unit again,
        its images one by one (one of them may be what kills it), until it
        has died ``ATTEMPTS`` times."""
        slot, unit = attempt.slot, attempt.unit
        if slot.alive:
            slot.alive = False
            self.alive -= 1
            self.cluster.watch(slot.handle, lambda where: self.arrivals.put((slot, where)))
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
        self.reruns += 1
        retries = [ImageGroup((item,)) for item in left] if isinstance(unit, ImageGroup) else [unit]
        for retry in retries:
            self.ledger.left.setdefault(retry.uid, numbers(retry))
            self.tries[retry.uid] = attempt.number
        self.ready.extendleft(reversed(retries))

    def restarted(self, slot: Slot, where: Where) -> None:
        log.info("Ray worker restarted: %s", where)
        slot.where, slot.alive = where, True
        self.alive += 1
        self.holds(slot, slot.running)

    def left(self, unit: Unit) -> list[Item]:
        return [item for item in items_of(unit) if item.number in self.ledger.left.get(unit.uid, ())]

    def fail(self, unit: Unit, message: str) -> None:
        for item in self.left(unit):
            self.note(unit, Event(item.number, Outcome("failed", message=message)))

    def give_up(self) -> None:
        log.error("no Ray worker has been alive for %d s", LONELY_SECONDS)
        for unit in [*self.ready, *(attempt.unit for attempt in self.running)]:
            self.fail(unit, "no Ray worker was left to run it")


def numbers(unit: Unit) -> set[int]:
    return {item.number for item in items_of(unit)}


def describe(unit: Unit) -> str:
    if isinstance(unit, ImageGroup):
        return f"{len(unit.items)} image(s)"
    if isinstance(unit, VideoSegment):
        return f"frames {unit.segment.owned + 1}-{unit.segment.end}"
    return "the whole video" if isinstance(unit, WholeVideo) else "its assembly"
