"""One frame's optimisation: Gatys et al.'s, coarse to fine, with the
losses and optimizer the run names, and a retry with safe settings when the
loss stops being finite."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import torch

from framestyle.errors import InputError, NonFiniteLossError
from framestyle.events import Step
from framestyle.media.images import PIL_FORMATS, fit_long_side, preview_path, write_image_atomic
from framestyle.transfer.margin import crop, fitting_margin, warm_margin, widen, widen_job
from framestyle.transfer.memory import HISTORY, MemoryPlan, plan_memory
from framestyle.transfer.optimize import StopRule, Task, WeightedLoss
from framestyle.transfer.pixels import resize_tensor
from framestyle.transfer.tiles import is_tileable
from framestyle.transfer.vgg import MIN_SIDE
from framestyle.types import FrameJob, StylizeResult

log = logging.getLogger("framestyle")


def active_losses(job: FrameJob) -> list[WeightedLoss]:
    """Every loss with a non-zero weight that takes part in this frame."""
    specs = job.context.losses()
    weights = {spec.name: spec.default_weight for spec in specs.values()}
    weights.update(job.settings.loss_weights())
    built = [(name, weight, specs[name].build(job)) for name, weight in weights.items() if weight != 0]
    return [WeightedLoss(name, weight, loss) for name, weight, loss in built if loss is not None]


def safe_losses(losses: list[WeightedLoss]) -> list[WeightedLoss]:
    """The same losses with weights scaled so the largest is 1: the same
    balance between them, without the overflow of extreme weights."""
    largest = max((abs(term.weight) for term in losses), default=1.0) or 1.0
    return [WeightedLoss(term.name, term.weight / largest, term.loss) for term in losses]


def previewer(job: FrameJob, margin: int = 0) -> Callable[[int, torch.Tensor], None] | None:
    """With ``--preview N``, a callback that writes an image's current result
    (the canvas less its ``margin``) every N iterations, as it will be written
    (size, colours), so that a user can watch it converge and stop when it looks done."""
    every = job.settings.preview
    if not every or job.source.kind != "image" or job.output is None or job.output.suffix.lower() not in PIL_FORMATS:
        return None
    out_size = fit_long_side(job.source.width, job.source.height, job.settings.size)
    target = preview_path(job.output)

    def write(iteration: int, image: torch.Tensor) -> None:
        if iteration % every == 0:
            write_image_atomic(target, job.context.as_written(crop(image, margin), job.content, out_size))

    return write


class FrameWork:
    """One frame's whole optimisation as a sequence of :class:`Task`: the
    levels of a pyramid in turn (Gatys et al.'s optimisation coarse to fine,
    each level starting from the last one's result upsampled, so most
    iterations run where they are cheap), or one task at full size for warm
    frames. A level whose loss stops being finite is retried once with
    settings that cannot overflow. The batch scheduler advances many of these
    together; the ``stylize`` hook advances one.

    The levels optimise a canvas ``--margin`` pixels wider than the frame on
    every side (:mod:`framestyle.transfer.margin`); the result is the frame
    cut out of it."""

    def __init__(self, job: FrameJob, init: torch.Tensor) -> None:
        self.job = job
        budget = job.iterations
        self.margin = fitting_margin(warm_margin(job.settings.margin) if job.warm else job.settings.margin,
                                     *job.content.shape[-2:])
        self.canvas = widen_job(job, self.margin)
        init = widen(init, self.margin)
        height, width = self.canvas.content.shape[-2:]
        if job.settings.scales > 1 and not job.warm and budget > 0:
            levels = pyramid(height, width, job.settings.scales)
            budgets = split_iterations(budget, len(levels), job.settings.final_share)
        else:
            levels, budgets = [(height, width)], [budget]
        self.plan = list(zip(levels, budgets, strict=True))
        self.total = budget
        self.level = 0
        self.image = init
        self.done = 0  # iterations of the finished levels
        self.retried = False
        self.first_error: Exception | None = None
        self.error: Exception | None = None
        self.final: StylizeResult | None = None
        self.tiles = 0  # the most tiles a level needed
        self.task = self.start_level(0, init, 0)

    @property
    def finished(self) -> bool:
        return self.final is not None or self.error is not None

    def level_job(self, level: int) -> FrameJob:
        (h, w), _ = self.plan[level]
        if level == len(self.plan) - 1:
            return self.canvas
        return dataclasses.replace(self.canvas, content=resize_tensor(self.canvas.content, h, w), scratch={})

    def start_level(self, level: int, image: torch.Tensor, done: int, safe: bool = False) -> Task:
        """The task of ``level``, starting from ``image`` after ``done``
        iterations; ``safe``: loss weights scaled so the largest is 1 and
        Adam, whose steps are bounded. It changes nothing else, so a failure
        here (out of memory) leaves the frame as it was."""
        job, settings = self.level_job(level), self.job.settings
        (h, w), iterations = self.plan[level]
        def on_step(iteration: int, loss: float, losses: dict[str, float]) -> None:
            job.context.step(Step(job.source.path, job.index, done + iteration, self.total, loss, losses, h * w))

        losses = active_losses(job)
        memory = memory_plan(job, losses, h, w, self.margin > 0)
        self.tiles = max(self.tiles, memory.tiles)
        name = "adam" if safe or memory.history == 0 and settings.optimizer == "lbfgs" else settings.optimizer
        spec = job.context.optimizer(name)
        chosen = dataclasses.replace(settings, learning_rate=None if safe else settings.learning_rate,
                                     history=min(settings.history, memory.history))
        if safe:
            losses = safe_losses(losses)
        last = level == len(self.plan) - 1
        torch.manual_seed(settings.seed)
        # Every level stops once its loss has converged (--tolerance): some
        # pairs need far fewer iterations than the budget (docs/performance/speed.md:
        # coarse-to-fine). Every step is projected back onto valid pixels [0, 1]: unconstrained
        # L-BFGS wanders outside, and the clamped image that is written then
        # scores worse than the one optimised (docs/performance/speed.md: valid pixels).
        return Task(resize_tensor(image, h, w), losses, job.context.encode,
                    lambda params: spec.build(params, chosen), iterations, on_step, clamp_each_step=True,
                    stop=StopRule(settings.min_iterations, settings.tolerance),
                    on_image=previewer(self.job, self.margin) if last else None, tiling=memory.tiling)

    def advance(self) -> None:
        """After a step: move on to the next level once this one is done."""
        if not self.task.finished or self.finished:
            return
        if isinstance(self.task.error, NonFiniteLossError):
            self.retry(self.task.error)
            return
        if self.task.error is not None:  # a loss plugin raised: this frame fails
            self.error = self.task.error
            return
        result = self.task.result()
        done = self.done + result.iterations
        if self.level + 1 < len(self.plan):  # built first: if that fails, advance can be called again
            start = carry_up(result.image, self.level_job(self.level).content, self.level_job(self.level + 1).content)
            self.task = self.start_level(self.level + 1, start, done)
        else:
            self.final = StylizeResult(crop(result.image, self.margin), done, result.loss, result.losses, self.tiles)
        self.level, self.image, self.done = self.level + 1, result.image, done

    def retry(self, error: NonFiniteLossError) -> None:
        if self.retried:
            self.error = NonFiniteLossError(f"{self.first_error}, and again with safe settings ({error}); "
                                            "nothing was written: check the weights and losses")
            return
        log.warning("%s: %s; retrying with the loss weights scaled to at most 1 and the Adam optimizer",
                    self.job.source.path, error)
        self.task = self.start_level(self.level, self.image, self.done, safe=True)
        self.retried, self.first_error = True, error

    def result(self) -> StylizeResult:
        if self.error is not None:
            raise self.error
        assert self.final is not None
        return self.final


def carry_up(image: torch.Tensor, coarse_content: torch.Tensor, fine_content: torch.Tensor) -> torch.Tensor:
    """The next level's start: its own content plus what the coarser level
    changed (``image - coarse_content``), upsampled bicubically. Upsampling
    the result itself blurs the content's detail away as well, which the
    finer level then spends its first iterations drawing back (docs/performance/speed.md:
    coarse-to-fine)."""
    height, width = fine_content.shape[-2:]
    change = torch.nn.functional.interpolate(image - coarse_content, size=(height, width), mode="bicubic",
                                             align_corners=False)
    return (fine_content + change).clamp(0, 1)


def memory_plan(job: FrameJob, losses: list[WeightedLoss], height: int, width: int,
                widened: bool = False) -> MemoryPlan:
    """How this level fits in memory (whole or in tiles, and how much
    L-BFGS history), said once per size when it is not the usual: a loss
    that cannot be tiled fails the frame rather than change its meaning.
    ``widened``: the size is the canvas's, the frame and its margin, and the
    message says so (a 60x40 image is optimised at 76x56)."""
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    plan = plan_memory(height, width, layers, job.settings.tile, job.context.memory_budget(), job.context.dtype)
    described = plan.describe() + (" (the image and its --margin)" if widened else "")
    untileable = [term.name for term in losses if not is_tileable(term.loss)]
    if plan.tiling is not None and untileable:
        raise InputError(f"{described}; the {', '.join(untileable)} loss cannot be computed in tiles: "
                         "lower --size, raise --max-memory, or --tile off to try it whole")
    said = job.context.cache("memory-plans")
    unusual = plan.tiling is not None or plan.history < min(job.settings.history, HISTORY)
    if unusual and (height, width) not in said:
        said[height, width] = plan
        if job.settings.optimizer != "lbfgs":
            history = f"{job.settings.optimizer} optimizer"
        elif plan.history:
            history = f"L-BFGS keeps {plan.history} pairs of history"
        else:
            history = "Adam instead of L-BFGS, whose history would not fit"
        log.info("%s: %s; %s", job.source.path.name, described, history)
    return plan


def pyramid(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    """``scales`` sizes, coarse to fine, √2 apart, ending at (height, width);
    never so small that VGG-19's deepest layers run out of pixels."""
    sizes = []
    for k in range(scales - 1, -1, -1):
        factor = 2 ** (-k / 2)
        h, w = max(1, round(height * factor)), max(1, round(width * factor))
        if min(h, w) >= MIN_SIDE or k == 0:
            sizes.append((h, w))
    return sizes


def split_iterations(budget: int, levels: int, final_share: float) -> list[int]:
    """The budget over the levels: ``final_share`` of it at full size, the
    rest shared equally by the coarser levels (coarse first)."""
    if levels == 1:
        return [budget]
    final = max(1, round(budget * final_share))
    coarse = budget - final
    shares = [coarse // (levels - 1) + (1 if i < coarse % (levels - 1) else 0) for i in range(levels - 1)]
    return [*shares, final]
