"""One frame's ``stylize`` hook call, made by pluggy, while the engine
optimises the frame in its batch.

pluggy calls ``stylize`` with its wrappers and first-result rule as for any
hook. The call runs on a thread of its own, and the engine and that thread
take turns, never running at once, so plugins see one ordinary call. When the
built-in optimisation is reached (:meth:`FrameContext.optimise`, what the
built-in ``stylize`` returns), it hands the frame's optimisation to the
engine and waits; the engine builds its :class:`FrameWork` and steps it with
the other frames in flight, all on the engine's thread (torch keeps thread
counts per thread, and MKL's for the whole process: the numbers stay those
of a run without plugins), then lets the call go on: the optimisation's result is returned, the wrappers' code
after ``yield`` runs, and what they make of it is the frame's result. A call
that a plugin answers itself ends without handing anything over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from framestyle.host import Hooks
    from framestyle.transfer.frame import FrameWork
    from framestyle.types import FrameJob, StylizeResult

_calls = threading.local()  # the call running on this thread, if any


class StylizeCancelled(BaseException):  # noqa: N818 - not an error: the frame is no longer wanted
    """Raised in a call whose frame was dropped (its input failed, or the
    run stopped), so its wrappers unwind; a BaseException, as plugins
    should not catch it."""


def current_call() -> StylizeCall | None:
    return getattr(_calls, "call", None)


class StylizeCall:
    """``hooks.stylize(job, init)`` on its own thread; it returns from the
    constructor once the call handed the optimisation over (:attr:`work`)
    or ended."""

    def __init__(self, hooks: Hooks, job: FrameJob, init: torch.Tensor) -> None:
        self.job = job
        self.work: FrameWork | None = None
        self.handed_over = False
        self._build: Callable[[], FrameWork] | None = None
        self._result: StylizeResult | None = None
        self._error: BaseException | None = None
        self._cancelled = False
        self._turn = "call"  # who runs now: "call" (hook code), "engine" (it holds the work) or "ended"
        self._changed = threading.Condition()
        threading.Thread(target=self._call, args=(hooks, init), daemon=True,
                         name=f"framestyle-stylize-{job.index}").start()
        self._wait_for_the_call()
        if self._error is not None:  # as a plugin's error from a call made here would be
            raise self._error
        if self._build is not None:
            try:
                self.work = self._build()
            except BaseException:  # out of memory, say: the frame starts again later, with a new call
                self.cancel()
                raise

    def hand_over(self, build: Callable[[], FrameWork]) -> StylizeResult:
        """On the call's thread: the engine builds the optimisation with
        ``build`` and runs it; this waits until it is finished, and returns
        its result."""
        self.handed_over = True
        with self._changed:
            if not self._cancelled:
                self._build, self._turn = build, "engine"
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._turn == "call")
        if self._cancelled or self.work is None:
            raise StylizeCancelled
        return self.work.result()

    def finish(self) -> StylizeResult:
        """On the engine's thread, the work finished (or none was handed
        over): the rest of the call, and its result."""
        if self._turn == "engine":
            with self._changed:
                self._turn = "call"
                self._changed.notify_all()
            self._wait_for_the_call()
        if self._error is not None:
            raise self._error
        assert self._result is not None  # the host refuses a stylize that returns nothing
        return self._result

    def cancel(self) -> None:
        """The frame is dropped: a call waiting on its optimisation unwinds
        (its wrappers see :class:`StylizeCancelled`) before this returns; one
        still in hook code is left to end by itself, its result unused."""
        with self._changed:
            self._cancelled = True
            if self._turn == "engine":
                self._turn = "call"
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._turn == "ended")

    def _call(self, hooks: Hooks, init: torch.Tensor) -> None:
        _calls.call = self
        try:
            self._result = hooks.stylize(self.job, init)
        except BaseException as error:  # raised again on the engine's thread
            self._error = error
        finally:
            _calls.call = None
            with self._changed:
                self._turn = "ended"
                self._changed.notify_all()

    def _wait_for_the_call(self) -> None:
        try:
            with self._changed:
                self._changed.wait_for(lambda: self._turn != "call")
        except BaseException:  # interrupted (Ctrl-C) while hook code ran
            self.cancel()
            raise
