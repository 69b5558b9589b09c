"""Executors: what runs a plan's units. Registered by plugins
(``register_executors``) and chosen with ``--executor NAME``.

An executor gets the units in the order they should start and a
:class:`Session`, and runs every unit whose ``needs`` finished well, with
:mod:`framestyle.engine.runner.unit` (in this process or another), handing each event
to ``session.emit`` as it comes. It returns when all are done; a Ctrl-C
passes through it, with nothing left open.

Two methods are optional. ``connect(settings) -> int`` is called before
the plan is made: it joins what the executor runs on (a cluster) and says
how many units it runs at once, so that a video is split into that many
segments. ``close()`` lets go of what ``connect`` took when the run ends
before ``run`` (planning failed). The ``ray`` executor
(:mod:`framestyle.engine.executors.ray.executor`) has both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from framestyle.engine.units import Event, Outcome, RunSpec, Unit, items_of
from framestyle.errors import PluginError, UsageError

# The statuses with which a unit leaves its inputs for the units that need it.
SUCCEEDED = ("done", "part")


class Session(Protocol):
    """The driver's side of a run, as executors see it."""

    spec: RunSpec

    def context(self) -> Any:
        """This process's :class:`~framestyle.engine.runner.context.UnitContext` (built once)."""

    def emit(self, event: Event) -> None:
        """Hand one event to the driver (observer hooks, records, progress)."""

    def stopping(self) -> bool:
        """True once no new input may start (``-x`` after a failure)."""


class Ledger:
    """Which units finished well, from their events, and the units that
    wait on them: each event's work is the same however many units the run
    has."""

    def __init__(self, units: Sequence[Unit]) -> None:
        self.left = {unit.uid: {item.number for item in items_of(unit)} for unit in units}
        self.failed: set[str] = set()
        self.waiting: dict[str, list[Unit]] = {}  # by each need, the units that wait on it
        for unit in units:
            for need in unit.needs:
                self.waiting.setdefault(need, []).append(unit)
        self.needed = set(self.waiting)

    def note(self, uid: str, event: Event) -> list[Unit]:
        """Take in one of unit ``uid``'s events; the units it releases (their
        needs all finished well), in plan order. A unit whose need failed is
        never released."""
        if not isinstance(event.payload, Outcome) or event.item not in self.left.get(uid, ()):
            return []
        self.left[uid].discard(event.item)
        if event.payload.status not in SUCCEEDED:
            self.failed.add(uid)
        if not self.succeeded(uid):
            return []
        if uid not in self.needed:
            del self.left[uid]  # done with: a million units are not held to the end
        return [unit for unit in self.waiting.pop(uid, []) if self.ready(unit)]

    def succeeded(self, uid: str) -> bool:
        """Every input of the unit ended well (a unit forgotten once done counts)."""
        return not self.left.get(uid) and uid not in self.failed

    def ready(self, unit: Unit) -> bool:
        return all(self.succeeded(need) for need in unit.needs)


class Fatal:
    """An error that ends the whole run, raised again in the driver."""

    KINDS: dict[str, type[Exception]] = {"UsageError": UsageError, "PluginError": PluginError}

    def __init__(self, error: Exception) -> None:
        self.kind, self.message = type(error).__name__, str(error)

    def error(self) -> Exception:
        return self.KINDS.get(self.kind, PluginError)(self.message)
