"""Every hook framestyle calls, in the order a run calls them.

A plugin is a module or object with functions decorated by
``framestyle.hookimpl`` whose names are hook names below; an implementation
may accept any subset of a hook's arguments. Built-in plugins live in
``framestyle/builtin/`` and use exactly this surface.

Order over a run (see ``tests/test_hook_order.py``)::

    register_loaders, register_writers, register_losses, register_optimizers, register_flows,
    register_executors
    on_run_start
      for each input:  on_source_start
        for each frame:  on_frame_start, init_image, stylize (on_step per iteration), on_frame_end
      on_source_end
    on_run_end

An input that is already complete (resume) gets ``on_source_start`` and
``on_source_end`` with status ``"skipped"``; one that fails gets
``on_source_end`` with status ``"failed"``. A video frame finished by an
interrupted run is reused: it gets ``on_frame_start`` and ``on_frame_end``
(with ``reused=True``) but no ``init_image`` or ``stylize``. ``on_run_end`` is always called,
also after Ctrl-C.

With ``--batch-size`` above 1, several frames are in flight at once (images of
one size, or segments of one video), so the events of different inputs and
frames interleave, and batched images start in order of their working size;
each frame's own events keep this order. While the built-in optimisation is
the only (non-wrapper) ``stylize``, the engine runs it for the whole batch:
a ``stylize`` wrapper's code before ``yield`` runs when its frame starts, the
rest when the frame's result is ready.

Where hooks run: registration and pipeline hooks (``register_*``,
``init_image``, ``stylize``, and the losses, optimizers, loaders and writers
they register) run wherever the executor runs a unit, maybe another process;
the ``on_*`` events run in the driver's process, from the units' events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from framestyle.events import FrameEnd, FrameStart, RunEnd, RunStart, SourceEnd, SourceStart, Step
    from framestyle.types import (
        ExecutorSpec,
        FlowSpec,
        FrameJob,
        LoaderSpec,
        LossSpec,
        OptimizerSpec,
        StylizeResult,
        WriterSpec,
    )

PROJECT = "framestyle"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- registration
# Called once when a run sets up, before on_run_start. Each implementation
# calls ``register`` once per thing it provides; names must be unique across
# all plugins (a clash is a plugin error, exit code 3).


@hookspec
def register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    """Register input loaders: ``register(LoaderSpec(...))``.

    For an input file, an explicit ``--loader NAME`` wins; otherwise loaders
    whose extensions match are tried by descending priority until one returns
    a source. Folders are walked by the core and offer each file to the
    loaders, so a new loader also works inside folders.

    The contract: a file may be opened more than once in a run (to plan it,
    and once per segment of a split video), in other processes and at the
    same time, and every opening must give the same frames.
    """


@hookspec
def register_writers(register: Callable[[WriterSpec], None]) -> None:
    """Register output writers: ``register(WriterSpec(...))``.

    ``--writer NAME`` wins; otherwise the writer whose extensions match the
    output file (or ``--format`` for an output folder), highest priority first.

    The contract: opening a writer has no side effects (it may refuse a
    target with an error); ``write`` then gets every frame once, in order,
    and nothing may appear under the final name until ``close`` succeeds.
    Resuming an interrupted video and splitting one into segments are the
    engine's work (it keeps the finished frames itself), so every writer has
    both without a line of its own.
    """


@hookspec
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register losses: ``register(LossSpec(...))``.

    A loss is used when its weight is non-zero: ``default_weight``, or
    ``--loss NAME=WEIGHT`` (the built-ins also have ``--content-weight``,
    ``--style-weight`` and ``--tv-weight``).
    """


@hookspec
def register_optimizers(register: Callable[[OptimizerSpec], None]) -> None:
    """Register optimizers: ``register(OptimizerSpec(...))``, chosen with
    ``--optimizer NAME``."""


@hookspec
def register_flows(register: Callable[[FlowSpec], None]) -> None:
    """Register optical flows: ``register(FlowSpec(...))``, chosen with
    ``--flow NAME`` (default ``dis``). The flow decides where a video frame
    starts warm, what the temporal loss holds it to, the scene cuts and
    E_warp; it runs wherever the frames are decoded, on the CPU beside the
    optimisation, and a source may be read by several processes at once."""


@hookspec
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register executors: ``register(ExecutorSpec(...))``, chosen with
    ``--executor NAME`` (default ``local``). An executor runs the plan's
    units: pipeline hooks run where it runs them, observer hooks (``on_*``)
    on the driver, from the units' events."""


# --------------------------------------------------------------------------- pipeline
# First-result hooks: the first implementation that returns something other
# than None wins. The built-ins are ``trylast``, so any plugin runs before
# them; a ``wrapper=True`` implementation can change the arguments' contents
# before and the result after.


@hookspec(firstresult=True)
def init_image(job: FrameJob) -> torch.Tensor | None:
    """Return the image the optimizer starts from for this frame
    (1x3xHxW, RGB in [0, 1], the size of ``job.content``), or None to defer.

    Built-in: ``--init content`` (default), ``noise`` or an image path.
    """


@hookspec(firstresult=True)
def stylize(job: FrameJob, init: torch.Tensor) -> StylizeResult | None:
    """Optimise ``init`` into the stylised frame and return a
    :class:`~framestyle.types.StylizeResult`, or None to defer.

    Built-in: the VGG-19 pixel optimisation of Gatys et al. with every loss
    whose weight is non-zero (``job.context.optimise(job, init)``); it calls
    ``on_step`` once per iteration. The engine makes each frame's call and
    optimises the frames that reach the built-in together, in one batch;
    wrappers see each frame's call as usual.
    """


# --------------------------------------------------------------------------- events
# Observers: every implementation is called; return values are ignored.


@hookspec
def on_run_start(event: RunStart) -> None:
    """The run is set up (weights loaded, inputs listed) and about to start."""


@hookspec
def on_source_start(event: SourceStart) -> None:
    """An input is about to be processed (or skipped, if already complete)."""


@hookspec
def on_frame_start(event: FrameStart) -> None:
    """A frame is about to be stylised."""


@hookspec
def on_step(event: Step) -> None:
    """The optimizer finished one iteration on the current frame."""


@hookspec
def on_frame_end(event: FrameEnd) -> None:
    """A frame was stylised and handed to the writer."""


@hookspec
def on_source_end(event: SourceEnd) -> None:
    """An input is finished: done, skipped, failed or interrupted."""


@hookspec
def on_run_end(event: RunEnd) -> None:
    """The run is over; ``event.exit_code`` is what the CLI will return."""
