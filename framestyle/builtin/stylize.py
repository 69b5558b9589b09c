"""Default pipeline: where optimisation starts, and the Gatys et al. optimisation."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from framestyle.errors import NonFiniteLossError
from framestyle.hookspecs import hookimpl
from framestyle.images import (
    PIL_FORMATS,
    fit_long_side,
    preview_path,
    read_image,
    resize,
    write_image_atomic,
)
from framestyle.optimize import StopRule, WeightedLoss, optimize
from framestyle.runtime import MIN_SIDE, to_tensor, warped_previous
from framestyle.types import FrameJob, Step, StylizeResult

log = logging.getLogger("framestyle")


@hookimpl(trylast=True)
def init_image(job: FrameJob) -> torch.Tensor:
    init = job.settings.init
    _, _, height, width = job.content.shape
    if job.warm:
        # Warm start: the previous result where the flow explains the pixel,
        # the current frame where it is newly visible or uncertain.
        warped, mask = warped_previous(job)
        return mask * warped + (1 - mask) * job.content
    if init == "content":
        return job.content.clone()
    if init == "noise":
        # Seeded per frame so a rerun (or a resumed run) reproduces it exactly.
        generator = torch.Generator().manual_seed(job.settings.seed * 1_000_003 + job.index)
        return torch.rand(job.content.shape, generator=generator).to(job.content.device)
    rgb = resize(read_image(Path(init)), width, height)
    return to_tensor(rgb, job.content.device)


def active_losses(job: FrameJob) -> list[WeightedLoss]:
    """Every loss with a non-zero weight that takes part in this frame."""
    registry = job.runtime.hooks.losses()
    weights = {spec.name: spec.default_weight for spec in registry.specs.values()}
    weights.update(job.settings.loss_weights())
    built = [(name, weight, registry.get(name).build(job)) for name, weight in weights.items() if weight != 0]
    return [WeightedLoss(name, weight, loss) for name, weight, loss in built if loss is not None]


def safe_losses(losses: list[WeightedLoss]) -> list[WeightedLoss]:
    """The same losses with weights scaled so the largest is 1: the same
    balance between them, without the overflow of extreme weights."""
    largest = max((abs(term.weight) for term in losses), default=1.0) or 1.0
    return [WeightedLoss(term.name, term.weight / largest, term.loss) for term in losses]


def previewer(job: FrameJob) -> Callable[[int, torch.Tensor], None] | None:
    """With ``--preview N``, a callback that writes an image's current result
    every N iterations, as it will be written (size, colours), so that a user
    can watch it converge and stop when it looks done."""
    every = job.settings.preview
    if not every or job.source.kind != "image" or job.output is None or job.output.suffix.lower() not in PIL_FORMATS:
        return None
    out_size = fit_long_side(job.source.width, job.source.height, job.settings.size)
    target = preview_path(job.output)

    def write(iteration: int, image: torch.Tensor) -> None:
        if iteration % every == 0:
            write_image_atomic(target, job.runtime.finish(image, job.content, out_size))

    return write


@hookimpl(trylast=True)
def stylize(job: FrameJob, init: torch.Tensor) -> StylizeResult:
    budget = job.iterations or job.settings.iterations
    if job.settings.scales > 1 and not job.warm and budget > 0:
        return coarse_to_fine(job, init, budget)
    return optimize_frame(job, init, budget, done=0, total=budget, preview=previewer(job))


def coarse_to_fine(job: FrameJob, init: torch.Tensor, budget: int) -> StylizeResult:
    """Gatys et al.'s optimisation on a pyramid: the image is optimised at
    sizes a factor of √2 apart, coarse first, each level starting from the
    last one's result upsampled; most iterations run where they are cheap."""
    height, width = job.content.shape[-2:]
    levels = pyramid(height, width, job.settings.scales)
    budgets = split_iterations(budget, len(levels), job.settings.final_share)
    image, done, result = init, 0, None
    for number, ((h, w), iterations) in enumerate(zip(levels, budgets, strict=True)):
        last = number == len(levels) - 1
        level = job if last else dataclasses.replace(job, content=resize_tensor(job.content, h, w), scratch={})
        start = resize_tensor(image, h, w)
        result = optimize_frame(level, start, iterations, done=done, total=budget,
                                preview=previewer(job) if last else None)
        image, done = result.image, done + result.iterations
    assert result is not None
    return StylizeResult(result.image, done, result.loss, result.losses)


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


def resize_tensor(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear", antialias=True,
                                           align_corners=False).clamp(0, 1)


def optimize_frame(job: FrameJob, init: torch.Tensor, budget: int, done: int, total: int,
                   preview: Callable[[int, torch.Tensor], None] | None) -> StylizeResult:
    """The optimisation at ``job.content``'s size; ``done`` iterations came
    before it out of ``total`` (coarser levels), for the progress display."""
    settings = job.settings
    spec = job.runtime.hooks.optimizers().get(settings.optimizer)
    hooks = job.runtime.hooks

    def on_step(iteration: int, loss: float, losses: dict[str, float]) -> None:
        hooks.on_step(Step(job.source.path, job.index, done + iteration, total, loss, losses))

    stop = StopRule(settings.min_iterations, settings.tolerance) if job.warm else None
    losses = active_losses(job)
    torch.manual_seed(settings.seed)
    try:
        # Every optimizer's step is projected back onto valid pixels [0, 1]:
        # unconstrained L-BFGS wanders outside, and the clamped image that is
        # written then scores worse than the one optimised (measured: 0.708
        # against 0.766 after 300 iterations at 256 px; README, Performance).
        return optimize(init, losses, job.runtime.encode, lambda params: spec.build(params, settings),
                        budget, on_step, clamp_each_step=True, stop=stop, on_image=preview)
    except NonFiniteLossError as exc:
        # Retry once with settings that cannot overflow: weights scaled down
        # to at most 1 and Adam, whose steps are bounded, with pixels kept in range.
        log.warning("%s: %s; retrying with the loss weights scaled to at most 1 and the Adam optimizer",
                    job.source.path, exc)
        adam = job.runtime.hooks.optimizers().get("adam")
        safe = dataclasses.replace(settings, learning_rate=None)
        torch.manual_seed(settings.seed)
        try:
            return optimize(init, safe_losses(losses), job.runtime.encode,
                            lambda params: adam.build(params, safe), budget, on_step,
                            clamp_each_step=True, stop=stop, on_image=preview)
        except NonFiniteLossError as again:
            raise NonFiniteLossError(f"{exc}, and again with safe settings ({again}); "
                                     "nothing was written: check the weights and losses") from None
