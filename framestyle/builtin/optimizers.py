"""L-BFGS (the default, as in Gatys et al.) and Adam."""

from __future__ import annotations

from collections.abc import Callable

import torch

from framestyle.hookspecs import hookimpl
from framestyle.settings import Settings
from framestyle.types import OptimizerSpec


def build_lbfgs(params: list[torch.Tensor], settings: Settings) -> torch.optim.Optimizer:
    # max_iter=1: each step() is one iteration, so the loop can report and stop
    # per iteration; L-BFGS keeps its history between step() calls.
    return torch.optim.LBFGS(
        params,
        lr=settings.learning_rate or 1.0,
        max_iter=1,
        max_eval=1,
        history_size=settings.history,
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )


def build_adam(params: list[torch.Tensor], settings: Settings) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=settings.learning_rate or 0.02)


@hookimpl
def register_optimizers(register: Callable[[OptimizerSpec], None]) -> None:
    register(OptimizerSpec("lbfgs", build_lbfgs,
                           "L-BFGS, one function evaluation per iteration (lr 1), pixels kept in [0, 1]"))
    register(OptimizerSpec("adam", build_adam, "Adam on pixels in [0, 1], clamped each step (lr 0.02)"))
