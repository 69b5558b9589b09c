"""The pixel optimisation loop shared by every optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from framestyle.errors import NonFiniteLossError
from framestyle.types import Loss, StylizeResult


@dataclass(frozen=True)
class WeightedLoss:
    name: str
    weight: float
    loss: Loss


def optimize(
    init: torch.Tensor,
    losses: Sequence[WeightedLoss],
    encode: Callable[[torch.Tensor, Sequence[str]], Mapping[str, torch.Tensor]],
    optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    iterations: int,
    on_step: Callable[[int, float, dict[str, float]], None] = lambda *a: None,
    clamp_each_step: bool = False,
    stop: StopRule | None = None,
    on_image: Callable[[int, torch.Tensor], None] | None = None,
) -> StylizeResult:
    """Minimise the weighted sum of ``losses`` over the pixels of ``init``.

    One ``optimizer.step(closure)`` is one iteration; ``on_step`` gets the
    iteration number, the total loss and each weighted term. The result is the
    best image evaluated, with its loss: L-BFGS without a line search can
    overshoot now and then, and the last step's image is never evaluated. A
    non-finite loss stops the frame with a :class:`NonFiniteLossError` rather than
    writing garbage. With a ``stop`` rule the loop may end before
    ``iterations`` once the loss stops improving. ``on_image`` gets the
    iteration number and the best image so far after each iteration.
    """
    image = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt = optimizer([image])
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    latest: dict[str, torch.Tensor] = {}
    best = Best(image.detach().clone(), math.inf, {})

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        features = encode(image, layers) if layers else {}
        total = torch.zeros((), device=image.device)
        for term in losses:
            value = term.weight * term.loss(image, features)
            latest[term.name] = value.detach()
            total = total + value
        total.backward()
        latest[""] = total.detach()
        loss = float(latest[""])
        if loss < best.loss:  # the pixels evaluated are the ones before this step moves them
            best.image.copy_(image.detach())
            best.loss = loss
            best.losses = {name: float(v) for name, v in latest.items() if name}
        return total

    done = 0
    history: list[float] = []  # best loss after each iteration
    for iteration in range(1, iterations + 1):
        opt.step(closure)
        done = iteration
        if clamp_each_step:
            with torch.no_grad():
                image.clamp_(0, 1)
        loss = float(latest[""])
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"the loss became {loss} at iteration {iteration}")
        on_step(iteration, loss, {name: float(v) for name, v in latest.items() if name})
        if on_image is not None:
            on_image(iteration, best.image)
        history.append(best.loss)
        if stop is not None and stop.should_stop(history):
            break
    if iterations == 0:
        return StylizeResult(init.detach().clone(), 0, math.nan, {})
    return StylizeResult(best.image, done, best.loss, best.losses)


@dataclass(frozen=True)
class StopRule:
    """Stop once the best loss improved by less than ``tolerance`` (relative)
    over the last ``window`` iterations, but never before ``minimum``."""

    minimum: int
    tolerance: float
    window: int = 10

    def should_stop(self, best: Sequence[float]) -> bool:
        if len(best) < max(self.minimum, self.window + 1):
            return False
        before, now = best[-self.window - 1], best[-1]
        return before - now < self.tolerance * abs(now)


@dataclass
class Best:
    image: torch.Tensor
    loss: float
    losses: dict[str, float]
