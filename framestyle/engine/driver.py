"""The run, top down: check the settings, plan the units, hand them to the
executor, and turn the units' events into the observer hooks, which the
built-in progress and records plugins watch as any plugin can.

Each input succeeds or fails on its own: a bad file is logged in one line
and the run goes on (``-x`` stops at the first). Outputs appear under their
final names only when complete, so a rerun skips them (resume) and an
interrupted run leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from framestyle.engine.formats import check_writers, writer_for
from framestyle.engine.planning.inputs import find_inputs
from framestyle.engine.planning.plan import Plan, make_plan
from framestyle.engine.regions import open_mask
from framestyle.engine.runner.context import UnitContext
from framestyle.engine.runtime import Runtime
from framestyle.engine.units import AssembleVideo, EncodeChunk, Event, Item, Outcome, RunSpec, Unit, items_of
from framestyle.errors import UsageError
from framestyle.events import FrameEnd, FrameStart, RunEnd, RunStart, SourceEnd, SourceStart, Step
from framestyle.host import PluginHost
from framestyle.settings import Settings, parse_region
from framestyle.transfer.weights import Weights

log = logging.getLogger("framestyle")


def validate(settings: Settings, host: PluginHost) -> None:
    """Check the settings, and every name in them against the plugins,
    before any work starts."""
    settings.check()
    hooks = host.hooks  # collecting the registries calls the register_* hooks, once
    hooks.optimizers().get(settings.optimizer)
    hooks.flows().get(settings.flow)
    losses = hooks.losses()
    for name in settings.losses:
        losses.get(name)
    if settings.loader:
        hooks.loaders().get(settings.loader)
    if settings.writer:
        hooks.writers().get(settings.writer)
    for region in settings.regions:  # readable masks, before the weights load
        open_mask(parse_region(region)[0]).at(0)
    if settings.output is not None and settings.inputs:  # a run's outputs (framestyle.stylize has none)
        outputs = find_inputs(settings, hooks.loaders(), hooks.writers()).items
        chosen = {spec.name: spec for spec in (writer_for(work.output, settings, hooks) for work in outputs)}
        check_writers(settings, hooks.writers(), list(chosen.values()))
    executor = hooks.executors().get(settings.executor)
    if not executor.in_process and host.registered_here:
        raise UsageError(f"--executor {settings.executor}: runs units in other processes, where plugin objects "
                         f"registered in this one ({', '.join(host.registered_here)}) do not exist; "
                         "install them as plugins or use -p")


def run(settings: Settings, host: PluginHost | None = None, weights: Weights | None = None) -> RunEnd:
    """Run ``settings`` with a fresh plugin host (or the one given)."""
    return Driver(settings, host or PluginHost(), weights).run()


@dataclass
class ItemState:
    """An input as the driver follows it from its units' events."""

    item: Item
    started: float = field(default_factory=time.perf_counter)
    kind: str = ""
    iterations: int = 0


class Driver:
    def __init__(self, settings: Settings, host: PluginHost, weights: Weights | None = None) -> None:
        validate(settings, host)
        defaults = {name: spec.default_weight for name, spec in host.hooks.losses().specs.items()}
        settings = settings.with_loss_defaults(defaults)  # the records show the weights used
        self.settings, self.host, self.hooks = settings, host, host.hooks
        # First: an executor that is not installed fails before any work,
        # and one that runs units on many workers says how many.
        self.executor = self.hooks.executors().get(settings.executor).build()
        workers = self.workers = self.executor.connect(settings) if hasattr(self.executor, "connect") else 1
        try:
            self.plan_run(weights, workers)
        except BaseException:
            if hasattr(self.executor, "close"):  # it holds a cluster: let go of it
                self.executor.close()
            raise
        self.by_number = {item.number: item for unit in self.plan.units for item in items_of(unit)}
        self.items: dict[int, ItemState] = {}  # inputs under way
        self.ended: set[int] = set()  # inputs announced as ended: what their other units still say is dropped
        self.counts = {"done": 0, "skipped": 0}
        self.finished: set[int] = set()  # inputs done in this run
        self.failed: list[tuple[Path, str]] = []
        self._context: UnitContext | None = None

    def plan_run(self, weights: Weights | None, workers: int) -> None:
        settings, host = self.settings, self.host
        self.runtime = Runtime(settings, weights)
        self.capacity = self.batch_capacity()
        # Segments start cold, so a video is split only where they run faster
        # than one after another: batched on a GPU or when asked for, or on
        # workers of their own.
        split = settings.batch_size > 0 or self.runtime.device.type == "cuda"
        segments = max(self.capacity if split else 1, workers)
        self.plan: Plan = make_plan(settings, self.hooks, self.runtime, self.capacity, segments, workers)
        self.spec = RunSpec(settings, host.plugin_args, host.autoload, self.capacity,
                            lanes(self.plan.units, self.capacity), self.runtime.weights.digest)

    # the session executors see ---------------------------------------------------

    def context(self) -> UnitContext:
        if self._context is None:
            self._context = UnitContext(self.spec, self.hooks, self.runtime)
        return self._context

    def stopping(self) -> bool:
        return self.settings.exitfirst and bool(self.failed)

    def emit(self, event: Event) -> None:
        """One event of a unit, as the observer hooks (announced once per input)."""
        payload = event.payload
        if event.item in self.ended:
            return
        state = self.items.get(event.item)
        if isinstance(payload, SourceStart):
            if state is None:  # a video's segments each open it: announced once
                assert payload.info is not None
                state = self.items[event.item] = ItemState(self.by_number[event.item], kind=payload.info.kind)
                self.hooks.on_source_start(payload)
        elif state is None and isinstance(payload, Outcome):  # it failed before it was opened
            self.unstarted(self.by_number[event.item], payload)
        elif state is None:
            return
        elif isinstance(payload, FrameStart):
            self.hooks.on_frame_start(payload)
        elif isinstance(payload, Step):
            self.hooks.on_step(payload)
        elif isinstance(payload, FrameEnd):
            self.hooks.on_frame_end(payload)
        elif isinstance(payload, Outcome):
            state.iterations += payload.iterations
            if payload.status != "part":
                self.end(state, payload)

    # the run --------------------------------------------------------------------

    def run(self) -> RunEnd:
        if self.settings.dry_run:
            return self.dry_run()
        started = time.perf_counter()
        plan = self.plan
        for path in plan.unclaimed:
            log.debug("skipped %s: no loader reads %s files", path, path.suffix or "extensionless")
        if plan.unclaimed:
            log.info("skipped %d file(s) that are not images (-v lists them)", len(plan.unclaimed))
        for item, path, message in plan.failed:
            if item is None:
                log.error("%s: %s", path, message)
                self.failed.append((path, message))
        self.hooks.on_run_start(RunStart(self.settings, plan.total, str(self.runtime.device),
                                         self.runtime.weights.source, plan.frames + len(plan.skipped), plan.to_file))
        for item in plan.skipped:
            self.unstarted(item, Outcome("skipped", message="already complete (--overwrite redoes it)"))
        for item, _, message in plan.failed:
            if item is not None:
                self.unstarted(item, Outcome("failed", message=message))
        interrupted = False
        try:
            self.executor.run(plan.units, self)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for state in list(self.items.values()):  # interrupted, or a usage or plugin error
                self.end(state, Outcome("interrupted"))
        exit_code = 130 if interrupted else 1 if self.failed else 0
        redone = sum(1 for item in plan.redone if item.number in self.finished)
        summary = RunEnd(self.counts["done"], self.counts["skipped"], self.failed, interrupted,
                         time.perf_counter() - started, exit_code, redone=redone)
        self.hooks.on_run_end(summary)
        return summary

    def dry_run(self) -> RunEnd:
        """Print the plan and the estimate (stdout: the data asked for); no
        observer hears of it, so nothing is written."""
        from framestyle.engine.dry_run import dry_run

        started = time.perf_counter()
        try:
            lines = dry_run(self.plan, self.settings, self.hooks, self.runtime, self.workers, self.settings.executor)
        finally:
            if hasattr(self.executor, "close"):
                self.executor.close()
        print("\n".join(lines), flush=True)
        return RunEnd(0, len(self.plan.skipped), [], False, time.perf_counter() - started, 0)

    def batch_capacity(self) -> int:
        """How many frames are optimised together: ``--batch-size``, or for
        auto what the device's free memory holds."""
        if self.settings.batch_size:
            return self.settings.batch_size
        capacity = self.runtime.auto_batch_size()
        level = logging.INFO if self.runtime.device.type == "cuda" else logging.DEBUG
        log.log(level, "batch size %d (auto, %s)", capacity, self.runtime.device)
        return capacity

    # an input's end ----------------------------------------------------------------

    def unstarted(self, item: Item, outcome: Outcome) -> None:
        """An input that ends before any unit opened it (skipped, or failed while planned)."""
        state = self.items[item.number] = ItemState(item)
        self.hooks.on_source_start(SourceStart(item.number, item.total, item.path, item.output, None))
        self.end(state, outcome)

    def end(self, state: ItemState, outcome: Outcome) -> None:
        """Announce an input's end, once."""
        item = state.item
        del self.items[item.number]
        self.ended.add(item.number)
        if outcome.status == "failed":
            log.error("%s: %s", item.path, outcome.message)
            self.failed.append((item.path, outcome.message))
        elif outcome.status in self.counts:
            self.counts[outcome.status] += 1
        if outcome.status == "done":
            self.finished.add(item.number)
        self.hooks.on_source_end(SourceEnd(item.number, item.path, item.output, outcome.status, outcome.frames,
                                           time.perf_counter() - state.started, outcome.message,
                                           outcome.kind or state.kind, state.iterations, item.made_with))


def lanes(units: list[Unit], capacity: int) -> int:
    """The most frames the run can have in flight at once: one per image,
    unsplit video or segment, up to ``capacity``."""
    streams = sum(0 if isinstance(unit, AssembleVideo | EncodeChunk) else len(items_of(unit)) for unit in units)
    return max(1, min(capacity, streams))
