"""The ``local`` executor: every unit in this process, batched."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from framestyle.engine.executors import SUCCEEDED, Ledger, Session
from framestyle.engine.units import Event, Outcome, Unit


class LocalExecutor:
    """Every unit in this process, as one batch: images of one size and a
    video's segments optimised side by side, decoding read ahead, the batch
    halved on out-of-memory errors, Ctrl-C leaving finished work on disk."""

    def run(self, units: Sequence[Unit], session: Session) -> None:
        from framestyle.engine.runner.scheduler import Scheduler

        context = session.context()
        context.stopping = session.stopping
        self.ledger = Ledger(units)
        self.streams: list[Any] = []
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
            if unit.needs:  # started by the event that finishes its last need
                continue
            yield from self.start(unit, context, session)

    def start(self, unit: Unit, context: Any, session: Session) -> list[Any]:
        from framestyle.engine.runner.unit import unit_streams

        streams = unit_streams(unit, context, self.emitter(unit, context, session))
        self.streams += streams
        return streams

    def emitter(self, unit: Unit, context: Any, session: Session) -> Callable[[Event], None]:
        def emit(event: Event) -> None:
            session.emit(event)
            released = self.ledger.note(unit.uid, event)
            if isinstance(event.payload, Outcome) and event.payload.status not in SUCCEEDED:
                for stream in self.streams:  # the input's other units stop, and let go of its files
                    if stream.item.number == event.item:
                        stream.drop()
            for waiting in released:  # an assembly has no frames: it runs to its end here
                self.start(waiting, context, session)

        return emit
