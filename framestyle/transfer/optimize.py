"""The pixel optimisation loop shared by every optimizer, one image or many.

A :class:`Task` is one image's optimisation at one size: its own pixels, its
own optimizer (and so its own L-BFGS history or Adam moments), its own losses,
best image and stopping point. :func:`step_together` advances any number of
tasks by one iteration with one pass of the encoder per image size: the
images are stacked into one batch, and since VGG-19 treats the images of a
batch independently and each task's loss sees only its own slice, every task
follows exactly the path it would follow alone (up to rounding).
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from framestyle.errors import NonFiniteLossError
from framestyle.transfer.tiles import Tiling, tiled_backward
from framestyle.types import Loss, StylizeResult

Encode = Callable[[torch.Tensor, Sequence[str]], Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class WeightedLoss:
    name: str
    weight: float
    loss: Loss


@dataclass(frozen=True)
class StopRule:
    """Stop once the best loss improved by no more than ``tolerance``
    (relative) over the last ``window`` iterations, but never before
    ``minimum``. A loss of exactly zero has nowhere to go: it stops too."""

    minimum: int
    tolerance: float
    window: int = 10

    def should_stop(self, best: Sequence[float]) -> bool:
        if len(best) < max(self.minimum, self.window + 1):
            return False
        before, now = best[-self.window - 1], best[-1]
        return before - now <= self.tolerance * abs(now)


@functools.cache
def optimizers_without_dynamo() -> None:
    """Spare each process the import of ``torch._dynamo`` (docs/performance/speed.md:
    start-up) that torch.optim's ``add_param_group``
    and ``zero_grad`` do on first use, only to mark themselves as not to be
    compiled: framestyle compiles no optimizer. It sets the mark torch's
    ``_disable_dynamo`` caches (the function itself); a torch without that
    cache ignores it and imports as before. Adam's ``step`` imports dynamo
    anyway; L-BFGS's does not."""
    for name in ("add_param_group", "zero_grad"):
        function = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        if function is not None and not hasattr(function, "__dynamo_disable"):
            setattr(function, "__dynamo_disable", function)


class Task:
    """Minimise the weighted sum of ``losses`` over the pixels of ``init``.

    One optimizer ``step(closure)`` is one iteration; ``on_step`` gets the
    iteration number, the total loss and each weighted term. The result is the
    best image evaluated, with its loss: L-BFGS without a line search can
    overshoot now and then, and the last step's image is never evaluated. A
    non-finite loss ends the task with ``error`` set rather than writing
    garbage. With a ``stop`` rule it may end before ``iterations`` once the
    loss stops improving. ``on_image`` gets the iteration number and the best
    image so far after each iteration. With a ``tiling``, the loss and its
    gradient are computed tile by tile (:mod:`framestyle.transfer.tiles`;
    every loss must be tileable), the same numbers in a tile's memory.
    """

    def __init__(
        self,
        init: torch.Tensor,
        losses: Sequence[WeightedLoss],
        encode: Encode,
        optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
        iterations: int,
        on_step: Callable[[int, float, dict[str, float]], None] = lambda *a: None,
        clamp_each_step: bool = False,
        stop: StopRule | None = None,
        on_image: Callable[[int, torch.Tensor], None] | None = None,
        tiling: Tiling | None = None,
    ) -> None:
        self.init = init
        self.image = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
        self.losses = list(losses)
        self.encode = encode
        optimizers_without_dynamo()
        self.optimizer = optimizer([self.image])
        self.iterations = iterations
        self.on_step = on_step
        self.clamp_each_step = clamp_each_step
        self.stop = stop
        self.on_image = on_image
        self.tiling = tiling
        self.layers = tuple(sorted({layer for term in self.losses for layer in term.loss.layers}))
        self.done = 0
        self.history: list[float] = []  # best loss after each iteration
        self.best = Best(self.image.detach().clone(), math.inf, {})
        self.latest: dict[str, torch.Tensor] = {}
        self.error: Exception | None = None
        self.finished = iterations == 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape)

    def evaluate(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The total loss of the current pixels from their ``features``; the
        best image so far is updated with them (before the step moves them)."""
        return self.settle({term.name: term.weight * term.loss(self.image, features) for term in self.losses})

    def settle(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The total of the weighted ``values``, kept as the latest; the best
        image so far is updated with them."""
        total = torch.zeros((), device=self.image.device)
        for name, value in values.items():
            self.latest[name] = value.detach()
            total = total + value
        self.latest[""] = total.detach()
        loss = float(self.latest[""])
        if loss < self.best.loss:
            self.best.image.copy_(self.image.detach())
            self.best.loss = loss
            self.best.losses = {name: float(v) for name, v in self.latest.items() if name}
        return total

    def evaluate_alone(self) -> torch.Tensor:
        """Loss and gradient for this image alone: for an optimizer that
        evaluates more than once per step (a line search)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.tiling is not None:
            return self.evaluate_tiled()
        features = self.encode(self.image, self.layers) if self.layers else {}
        total = self.evaluate(features)
        total.backward()
        return total

    def evaluate_tiled(self) -> torch.Tensor:
        """Loss and gradient tile by tile (``self.tiling``), the gradient
        left in ``image.grad`` as a backward pass would."""
        assert self.tiling is not None
        return self.settle(tiled_backward(self.image, self.losses, self.encode, self.tiling))

    def step(self) -> None:
        """The optimizer's step from the gradient :func:`step_together` left;
        the first evaluation the optimizer asks for is that one."""
        evaluated = [False]

        def closure() -> torch.Tensor:
            if evaluated[0]:
                return self.evaluate_alone()
            evaluated[0] = True
            return self.latest[""]

        # torch annotates the closure as returning a float; L-BFGS needs the tensor.
        self.optimizer.step(closure)  # type: ignore[arg-type]
        self.done += 1
        if self.clamp_each_step:
            with torch.no_grad():
                self.image.clamp_(0, 1)
        loss = float(self.latest[""])
        if not math.isfinite(loss):
            self.error = NonFiniteLossError(f"the loss became {loss} at iteration {self.done}")
            self.finished = True
            return
        self.on_step(self.done, loss, {name: float(v) for name, v in self.latest.items() if name})
        if self.on_image is not None:
            self.on_image(self.done, self.best.image)
        self.history.append(self.best.loss)
        self.finished = self.done >= self.iterations or (self.stop is not None and self.stop.should_stop(self.history))

    def run(self) -> StylizeResult:
        """Optimise this image alone to the end; raises the error that ended
        it (:class:`NonFiniteLossError` if the loss stopped being finite)."""
        while not self.finished:
            step_together([self], self.encode)
        return self.result()

    def result(self) -> StylizeResult:
        if self.error is not None:
            raise self.error
        if self.done == 0:
            return StylizeResult(self.init.detach().clone(), 0, math.nan, {})
        return StylizeResult(self.best.image, self.done, self.best.loss, self.best.losses)


# On the CPU, stacking images into one VGG-19 pass pays only while they are
# small (docs/performance/speed.md: passes side by side). So a CPU pass holds at most this many
# pixels, and the passes run side by side, one per core. A run of several
# frames in flight puts one image in each pass all the same (see
# step_together): no slower, and an image's result does not depend on the others.
CPU_PASS_PIXELS = 128 * 128 * 4


def step_together(tasks: Sequence[Task], encode: Encode, lanes: int | None = None) -> None:
    """One iteration of every unfinished task: one encoder pass (forward and
    backward) per image size for all of them, at most :data:`CPU_PASS_PIXELS`
    pixels a pass on the CPU (no limit elsewhere), then each task's own step.
    A task whose loss raises ends with that error; the others go on. Out of
    memory is raised for the caller to shrink the batch.

    ``lanes`` is how many images the run keeps in flight (its batch size).
    On the CPU, a run of several lays every pass out the same way whichever
    others are in flight (see :func:`passes`), so that an image's result, to
    the last bit, does not depend on them: a resumed run must write the same
    bytes as an uninterrupted one. None: lay out by the tasks at hand."""
    tiled = [task for task in tasks if not task.finished and task.tiling is not None]
    active = [task for task in tasks if not task.finished and task.tiling is None]
    for task in tiled:  # alone and on every core: a tiled image is a large one
        run_tiled(task)
    fixed = lanes is not None and lanes > 1 and bool(active) and cpu_layout(active[0])
    if active:
        run_passes(passes(active, one_each=fixed), encode, min(cpu_lanes(), lanes) if lanes and fixed else None)
    for task in [*tiled, *active]:
        if not task.finished:
            task.step()


def passes(tasks: Sequence[Task], one_each: bool = False) -> list[list[Task]]:
    """The tasks in groups of one image size. On the CPU each group keeps to
    the pixel budget and is spread over at least as many passes as there are
    intra-op threads, for :func:`run_passes` to run side by side; with
    ``one_each``, one image a pass (fp32 convolutions over 1 and 2 images, or
    on 1 and 2 threads, differ in the last bits)."""
    by_shape: dict[tuple[int, ...], list[Task]] = {}
    for task in tasks:
        by_shape.setdefault(task.shape, []).append(task)
    chunks = []
    for shape, group in by_shape.items():
        per_pass = len(group)
        if cpu_layout(group[0]):
            spread = math.ceil(len(group) / cpu_lanes())
            per_pass = 1 if one_each else max(1, min(CPU_PASS_PIXELS // (shape[-1] * shape[-2]), spread))
        chunks += [group[i:i + per_pass] for i in range(0, len(group), per_pass)]
    return chunks


def run_passes(chunks: Sequence[Sequence[Task]], encode: Encode, workers: int | None = None) -> None:
    """Run every pass. On the CPU, several passes run side by side in worker
    threads that share the intra-op threads out between them, which is faster
    than one after the other on every core (docs/performance/speed.md: passes side by side;
    probably fewer barriers in the many small, memory-bound operations).
    ``workers`` fixes how many share them, however many passes
    there are; None: one per pass, up to one per intra-op thread."""
    if workers is None:
        workers = min(len(chunks), cpu_lanes())
    if workers < 2 or not cpu_layout(chunks[0][0]):
        for chunk in chunks:
            run_pass(chunk, encode)
        return
    pool, threads_each = worker_pool(workers), max(1, torch.get_num_threads() // workers)  # one thread each at least
    futures = [pool.submit(run_pass_on, threads_each, chunk, encode) for chunk in chunks]
    try:
        concurrent.futures.wait(futures)  # every pass ends, whichever of them fails
    except BaseException:  # interrupted: passes not yet started never start, none runs on behind
        for future in futures:
            future.cancel()
        concurrent.futures.wait(futures)
        raise
    for future in futures:
        future.result()  # the first pass's error, if any, once all have ended


def cpu_layout(task: Task) -> bool:
    """Whether passes are laid out for the CPU (a pixel budget, passes side
    by side, one image a pass when several are in flight) rather than
    stacked, one pass per image size, as on a GPU."""
    return task.image.device.type == "cpu"


def cpu_lanes() -> int:
    """How many CPU passes may run side by side: one per intra-op thread."""
    return torch.get_num_threads()


@functools.cache
def worker_pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """Threads for passes side by side (see :func:`run_pass_on`)."""
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="framestyle-pass")


def run_pass_on(threads: int, group: Sequence[Task], encode: Encode) -> None:
    """:func:`run_pass` on a pass thread, limited to ``threads`` intra-op
    threads, set again for every pass: torch keeps the count per thread, but
    MKL's (the matrix products') is the process's, so any thread's
    ``torch.set_num_threads`` since this one last set it would change the
    pass's products, and an image's last bits would depend on what ran
    before it in the process (tests/test_executors.py, two_lanes)."""
    torch.set_num_threads(threads)
    run_pass(group, encode)


def run_pass(group: Sequence[Task], encode: Encode) -> None:
    """Forward the group's images as one batch, each task's loss on its own
    rows, and backward to every task's pixels."""
    for task in group:
        task.optimizer.zero_grad(set_to_none=True)
    layers = sorted({layer for task in group for layer in task.layers})
    images = torch.cat([task.image for task in group]) if len(group) > 1 else group[0].image
    features = encode(images, layers) if layers else {}
    total = torch.zeros((), device=images.device)
    for row, task in enumerate(group):
        own = {name: value[row:row + 1] for name, value in features.items()}
        try:
            total = total + task.evaluate(own)
        except Exception as error:
            end_with(task, error)
    if total.requires_grad:
        total.backward()


def run_tiled(task: Task) -> None:
    """One tiled task's loss and gradient."""
    try:
        task.evaluate_alone()
    except Exception as error:
        end_with(task, error)


def end_with(task: Task, error: Exception) -> None:
    """A loss plugin's failure ends its own frame only; out of memory is
    raised for the caller to shrink the batch."""
    if is_out_of_memory(error):
        raise error
    task.error, task.finished = error, True


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's out-of-memory error, or the CPU allocator's: the batch shrinks."""
    text = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


@dataclass
class Best:
    image: torch.Tensor
    loss: float
    losses: dict[str, float]
