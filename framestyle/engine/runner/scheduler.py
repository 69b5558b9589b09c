"""Frames in flight together: the scheduler behind ``--batch-size``.

A *stream* is a sequence of frames that must be optimised in order: one
image, a video, or one segment of a video (each frame may start from the
previous one's result). The scheduler keeps up to ``capacity`` frames in
flight, at most one per stream, and advances all of them one iteration at a
time with one VGG-19 pass per image size (:func:`~framestyle.transfer.optimize.step_together`).
A frame that finishes, by its budget or its own stopping rule, is handed back
to its stream at once and replaced by the stream's next frame, or by the
next stream's first: the batch never waits for its slowest member.

On a CUDA out-of-memory error the capacity is halved and the frames that no
longer fit wait, with their optimizer state, until there is room again;
nothing done is lost.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch

from framestyle.errors import InputError
from framestyle.transfer.optimize import Encode, is_out_of_memory, step_together

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.engine.runner.chain import InFlight
    from framestyle.engine.runner.streams import Stream

log = logging.getLogger("framestyle")


class Scheduler:
    def __init__(self, encode: Encode, capacity: int, lanes: int | None = None) -> None:
        self.encode = encode
        self.capacity = max(1, capacity)
        # The most frames this run can have in flight at once (its streams
        # can be fewer than the capacity): the CPU pass layout follows it.
        self.lanes = max(1, lanes or self.capacity)
        self.active: list[tuple[Stream, InFlight]] = []
        self.waiting: deque[tuple[Stream, InFlight]] = deque()  # moved out by an out-of-memory error
        self.later: deque[Stream] = deque()  # streams whose next frame could not start for lack of memory

    def run(self, streams: Iterable[Stream]) -> None:
        """Optimise every frame of every stream; returns when all are done.
        A KeyboardInterrupt passes through with the frames in flight unfinished."""
        upcoming = iter(streams)
        try:
            while True:
                self.fill(upcoming)
                if not self.active:
                    return
                self.step()
        finally:  # interrupted, or a usage or plugin error: no frame's stylize call is left waiting
            for _, work in [*self.active, *self.waiting]:
                work.drop()

    def step(self) -> None:
        """One iteration of every frame in flight; those that finish go to their streams."""
        try:
            step_together([work.task for _, work in self.active if work.task is not None], self.encode,
                          lanes=min(self.lanes, self.capacity))
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            if len(self.active) > 1:
                self.shrink()
            else:
                self.give_up(error)
            return
        for stream, work in list(self.active):
            if (stream, work) in self.active:  # an out-of-memory error may have moved it out
                self.settle(stream, work)

    def fill(self, upcoming: Iterator[Stream]) -> None:
        """Take frames in until the batch is full: waiting ones first, then
        the next streams."""
        for stream, work in self.active:
            if stream.cancelled:
                work.drop()
        self.active = [(stream, work) for stream, work in self.active if not stream.cancelled]
        while len(self.active) < self.capacity and self.waiting:
            stream, work = self.waiting.popleft()
            if stream.cancelled:
                work.drop()
            else:
                self.active.append((stream, work))
        while len(self.active) < self.capacity and self.later:
            self.start(self.later.popleft())
        while len(self.active) < self.capacity:
            coming = next(upcoming, None)
            if coming is None:
                return
            stream = coming
            self.start(stream)

    def start(self, stream: Stream) -> None:
        """Bring the stream's next frame in; a frame that needs no
        optimisation (reused, or done by a plugin) is finished at once. Out
        of memory while it starts, with other frames in flight, shrinks the
        batch; the stream offers the same frame again when there is room."""
        while not stream.cancelled:
            try:
                work = stream.next_work()
                if work is None:
                    return
                if not work.finished:
                    self.active.append((stream, work))
                    return
                stream.finish(work)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:
                if is_out_of_memory(error) and self.active:
                    self.shrink(starting=1)
                    self.later.append(stream)
                else:
                    stream.fail(error)
                return

    def settle(self, stream: Stream, work: InFlight) -> None:
        """After a step: a finished frame goes to its stream, whose next frame takes its place."""
        if stream.cancelled:
            return
        try:
            work.advance()
            if not work.finished:
                return
            self.active.remove((stream, work))
            stream.finish(work)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            if is_out_of_memory(error) and len(self.active) > 1:
                self.shrink()  # the frame moves on at a later step; nothing of it is lost
                return
            if (stream, work) in self.active:
                self.active.remove((stream, work))
            work.drop()
            stream.fail(error)
            return
        self.start(stream)

    def give_up(self, error: BaseException) -> None:
        """Out of memory with one frame alone: that input fails."""
        stream, work = self.active.pop()
        work.drop()
        self.capacity = 1
        release_cached_memory()
        task = work.task
        size = f" at {task.shape[-1]}x{task.shape[-2]} px" if task is not None else ""
        stream.fail(InputError(f"out of memory optimising one frame{size}; try a smaller --size "
                               f"({str(error).splitlines()[0]})"))

    def shrink(self, starting: int = 0) -> None:
        """Halve the batch (``starting``: a frame that failed to join it counts too)."""
        in_flight = min(self.capacity, len(self.active) + starting)
        self.capacity = max(1, in_flight // 2)
        release_cached_memory()
        moved, self.active = self.active[self.capacity:], self.active[:self.capacity]
        self.waiting.extendleft(reversed(moved))
        log.warning("out of memory with %d frame(s) in a batch; continuing with %d (finished frames are kept)",
                    in_flight, self.capacity)


def release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
