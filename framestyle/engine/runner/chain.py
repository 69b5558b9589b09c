"""A shot's frames in order, each starting warm from the last one's result
(:class:`Chain`), and a frame in flight (:class:`InFlight`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from framestyle.engine.formats import open_source
from framestyle.engine.regions import FollowedMask, StillMask, masks_at
from framestyle.engine.runner.context import PluginContext, UnitContext
from framestyle.engine.runner.read_ahead import DecodedFrame
from framestyle.engine.runner.stylize_call import StylizeCall
from framestyle.engine.units import Event, Item
from framestyle.errors import InputError
from framestyle.events import FrameEnd, FrameStart
from framestyle.media.images import resize
from framestyle.media.motion import warp_error as motion_warp_error
from framestyle.transfer.frame import FrameWork
from framestyle.transfer.optimize import Task
from framestyle.transfer.pixels import to_tensor
from framestyle.types import FrameJob, RegionMask, SourceInfo, StylizeResult

Emit = Callable[[Event], None]


class InFlight:
    """A frame in flight: its ``stylize`` call (None for a frame read back
    from an earlier run), the optimisation the call handed over, and what
    writing the frame needs."""

    def __init__(self, frame: DecodedFrame, content: torch.Tensor, previous: np.ndarray | None, warm: bool,
                 call: StylizeCall | None, part: str) -> None:
        self.index, self.content_rgb, self.size, self.motion = frame.index, frame.working, frame.out_size, frame.motion
        self.content, self.previous, self.warm = content, previous, warm
        self.call = call
        self.part = part  # "frame"; "tail": faded into the next segment's head later; "head": only for that fade
        self.started = time.perf_counter()
        self.iterations, self.loss, self.tiles = 0, math.nan, 0
        self.losses: dict[str, float] = {}

    @property
    def reuse(self) -> bool:
        return self.call is None

    @property
    def work(self) -> FrameWork | None:
        return self.call.work if self.call is not None else None

    @property
    def task(self) -> Task | None:
        return self.work.task if self.work is not None else None

    @property
    def finished(self) -> bool:
        return self.work is None or self.work.finished

    def advance(self) -> None:
        assert self.work is not None
        self.work.advance()

    def result(self) -> StylizeResult:
        """The call's result once the optimisation (if it got one) is
        finished. An optimisation that failed fails the frame as it is; the
        call unwinds."""
        assert self.call is not None
        if self.work is not None and self.work.error is not None:
            self.call.cancel()
            raise self.work.error
        return self.call.finish()

    def drop(self) -> None:
        """The frame will not be finished: let its call go."""
        if self.call is not None:
            self.call.cancel()


class Chain:
    """Frames of one source in order, each starting warm from the last
    one's result where the shot goes on: the steps every stream shares."""

    def __init__(self, item: Item, info: SourceInfo, context: UnitContext, emit: Emit) -> None:
        self.item, self.info, self.context, self.emit = item, info, context, emit
        # The last frame as written, back at the working size: what a resumed run reads back.
        self.previous: np.ndarray | None = None
        self.previous_source: np.ndarray | None = None  # its source frame at the working size
        self.previous_features: torch.Tensor | None = None  # that source's content-layer activations
        self.starting: set[int] = set()  # frames announced whose work may be built again (out of memory)
        self.iterations = 0  # over all its frames, heads included
        self.frames = 0  # frames announced as ended
        self.plugins = PluginContext(context.runtime, context.hooks, lambda step: emit(Event(item.number, step)))
        follow = context.settings.region_follow and info.kind == "video"
        self.followed = {n: FollowedMask(mask, info.path, self.working_frames, context.motion)
                         for n, mask in enumerate(context.runtime.masks) if follow and isinstance(mask, StillMask)}

    def prepare(self, frame: DecodedFrame, reuse: bool, part: str = "frame") -> InFlight:
        """A frame's start. A video frame that continues a shot starts warm
        from the previous result warped by the flow of the original frames;
        the first frame and the first after a scene cut start cold."""
        settings, runtime, hooks = self.context.settings, self.context.runtime, self.context.hooks
        previous = self.previous
        content = to_tensor(frame.working, runtime.device)
        motion = frame.motion if previous is not None else None
        warm = previous is not None and motion is not None and not motion.cut and settings.warm_start
        video = self.info.kind == "video"
        budget = settings.frame_iterations(video, warm)
        if part != "head" and frame.index not in self.starting:
            estimate = max(self.info.frame_count or 0, frame.index + 1) if video else self.info.frame_count
            self.emit(Event(self.item.number, FrameStart(self.info.path, frame.index, estimate, *frame.out_size,
                                                         budget, warm)))
            self.starting.add(frame.index)
        if reuse:
            return InFlight(frame, content, previous, warm, None, part)
        job = FrameJob(self.info, frame.index, content, settings, self.plugins, motion=motion, warm=warm,
                       iterations=budget, output=self.item.output, previous_rgb=previous,
                       previous_source=self.previous_source,
                       style_weights=self.item.styles.weights_at(frame.index) if self.item.styles else None,
                       regions=self.region_masks(frame))
        return InFlight(frame, content, previous, warm, StylizeCall(hooks, job, hooks.init_image(job)), part)

    def region_masks(self, frame: DecodedFrame) -> tuple[RegionMask, ...]:
        """The ``--region`` masks of ``frame``, at its working size."""
        width, height = frame.working.shape[1::-1]
        masks = [self.followed[n].at(frame.index, width, height, frame.motion) if n in self.followed
                 else mask.at(frame.index) for n, mask in enumerate(self.context.runtime.masks)]
        return masks_at(masks, self.context.runtime.region_group, width, height)

    def working_frames(self) -> Iterator[np.ndarray]:
        """The source's frames from its first, at the working size, from an opening of their own."""
        source = open_source(self.info.path, self.context.settings, self.context.hooks)
        try:
            for rgb in source.frames():
                yield self.context.runtime.working_frame(rgb)[0]
        finally:
            source.close()

    def result(self, done: InFlight, kept: Callable[[int, str], np.ndarray]) -> np.ndarray:
        """The frame to write: the optimised image at the output size, or a
        finished frame read back."""
        if done.reuse:
            return kept(done.index, done.part)
        result = done.result()
        done.iterations, done.loss, done.losses = result.iterations, result.loss, dict(result.losses)
        done.tiles = result.tiles
        if not bool(torch.isfinite(result.image).all()):  # whichever plugin made it
            raise InputError(f"frame {done.index + 1}: the result has NaN or infinite pixels; nothing was written")
        return self.context.runtime.finish(result.image, done.content, done.size)

    def ended(self, done: InFlight, written: np.ndarray) -> None:
        """Announce a written frame; the next frame starts from this one as
        written, brought back to the working size: exactly what a resumed
        run reads back from disk, so a resumed video is identical to an
        uninterrupted one even when small frames are optimised enlarged."""
        height, width = done.content_rgb.shape[:2]
        styled = resize(written, width, height)
        previous, motion = done.previous, done.motion
        warp_error = source_warp_error = lag = None
        features = self.content_features(done.content_rgb) if self.info.kind == "video" else None
        if previous is not None and self.previous_source is not None and motion is not None and not motion.cut:
            warp_error = motion_warp_error(styled, previous, motion)
            source_warp_error = motion_warp_error(done.content_rgb, self.previous_source, motion)
            lag = self.lags(styled, features)
        self.iterations += done.iterations
        if done.part != "head":  # a head's frame is announced by the segment that owns it
            self.starting.discard(done.index)
            self.frames += 1
            self.emit(Event(self.item.number, FrameEnd(
                self.info.path, done.index, done.iterations, time.perf_counter() - done.started,
                done.loss, done.losses, warm=done.warm, cut=bool(motion and motion.cut),
                reused=done.reuse, warp_error=warp_error, source_warp_error=source_warp_error, lag=lag,
                tiles=done.tiles, style=self.item.styles.label_at(done.index) if self.item.styles else "")))
        self.previous, self.previous_source, self.previous_features = styled, done.content_rgb, features

    def content_features(self, rgb: np.ndarray) -> torch.Tensor:
        layer = self.context.settings.content_layer
        with torch.no_grad():
            return self.context.runtime.encode(to_tensor(rgb, self.context.runtime.device), [layer])[layer].float()

    def lags(self, styled: np.ndarray, features: torch.Tensor | None) -> bool:
        """Whether the frame as written is closer in content to the previous
        source frame than to its own: it kept the last frame's content."""
        assert features is not None and self.previous_features is not None
        ours = self.content_features(styled)
        return bool((ours - self.previous_features).square().sum() < (ours - features).square().sum())
