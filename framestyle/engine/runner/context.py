"""What units run with: :class:`UnitContext`, one per process, and the run
as a frame's plugins see it, :class:`PluginContext`
(:class:`framestyle.types.FrameContext`): a thin face over the runtime and
the plugin hooks, so that what plugins may use is declared and stays put
while the core changes behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from framestyle.engine.runner.stylize_call import current_call
from framestyle.engine.runtime import Runtime
from framestyle.engine.units import RunSpec
from framestyle.errors import UsageError
from framestyle.events import Step
from framestyle.host import Hooks, PluginHost
from framestyle.media.motion import Motion
from framestyle.media.motion import estimate as estimate_motion
from framestyle.settings import Settings
from framestyle.transfer.frame import FrameWork
from framestyle.transfer.optimize import step_together
from framestyle.transfer.weights import Weights
from framestyle.types import FrameJob, LossSpec, OptimizerSpec, StylizeResult


class PluginContext:
    """:class:`~framestyle.types.FrameContext` over one process's runtime;
    ``announce`` takes each :class:`Step` to the driver's ``on_step``."""

    def __init__(self, runtime: Runtime, hooks: Hooks, announce: Callable[[Step], None]) -> None:
        self._runtime, self._hooks, self._announce = runtime, hooks, announce

    @property
    def device(self) -> torch.device:
        return self._runtime.device

    @property
    def dtype(self) -> torch.dtype | None:
        return self._runtime.autocast

    @property
    def style_weights(self) -> list[float]:
        return self._runtime.style_weights

    def encode(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        return self._runtime.encode(image, layers)

    def grams(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        return self._runtime.grams(image, layers)

    def memory_budget(self) -> int:
        return self._runtime.memory_budget()

    def style_images(self, height: int, width: int) -> list[torch.Tensor]:
        return self._runtime.style_images(height, width)

    def style_groups(self, height: int, width: int, palette: np.ndarray | None = None) -> list[list[torch.Tensor]]:
        return self._runtime.style_groups(height, width, palette)

    def cache(self, owner: str) -> dict[Any, Any]:
        return self._runtime.plugin_caches.setdefault(owner, {})

    def losses(self) -> Mapping[str, LossSpec]:
        return self._hooks.losses().specs

    def optimizer(self, name: str) -> OptimizerSpec:
        return self._hooks.optimizers().get(name)

    def step(self, event: Step) -> None:
        self._announce(event)

    def as_written(self, image: torch.Tensor, content: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        return self._runtime.finish(image, content, size)

    def optimise(self, job: FrameJob, init: torch.Tensor) -> StylizeResult:
        call = current_call()
        if call is not None and call.job is job and not call.handed_over:
            return call.hand_over(lambda: FrameWork(job, init))  # the engine optimises it in its batch
        work = FrameWork(job, init)
        while not work.finished:
            step_together([work.task], self._runtime.encode)
            work.advance()
        return work.result()


class UnitContext:
    """What units run with in one process: the run's spec, the plugin hooks
    and the runtime (device, network, styles, caches), built on first use,
    so that a unit with no frames to optimise (a video's assembly) never
    loads the network. ``cancelled`` holds inputs that failed elsewhere,
    whose other units stop; ``stopping`` says no new input may start (``-x``
    after a failure)."""

    def __init__(self, spec: RunSpec, hooks: Hooks, runtime: Runtime | None = None,
                 weights: Weights | None = None) -> None:
        self.spec, self.hooks, self._runtime, self.weights = spec, hooks, runtime, weights
        self.cancelled: set[int] = set()
        self.stopping: Callable[[], bool] = lambda: False

    @property
    def settings(self) -> Settings:
        return self.spec.settings

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            runtime = Runtime(self.spec.settings, self.weights)
            if runtime.weights.digest != self.spec.weights_digest:
                raise UsageError("this process loads other VGG-19 weights than the run was planned with "
                                 f"({runtime.weights.source}); set --weights or FRAMESTYLE_CACHE_DIR alike")
            self._runtime = runtime
        return self._runtime

    def motion(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        """How ``current`` moved from ``previous``, by the run's ``--flow``."""
        return estimate_motion(previous, current, self.hooks.flows().get(self.settings.flow).estimate)

    @classmethod
    def build(cls, spec: RunSpec, weights: Weights | None = None) -> UnitContext:
        """The context of a process of its own: a fresh plugin host; the
        runtime when a unit first needs it, with ``weights`` (the driver's,
        handed over) or those this process finds itself."""
        return cls(spec, PluginHost(spec.plugins, autoload=spec.autoload).hooks, weights=weights)
