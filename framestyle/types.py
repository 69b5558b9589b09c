"""Public types shared by the core and by plugins.

Everything a plugin needs to add a loader, a writer, a loss or an optimizer is
defined here (plus :data:`framestyle.hookimpl`); what observers are told, in
:mod:`framestyle.events`. This module imports neither
torch nor OpenCV, so ``import framestyle`` stays fast; tensors appear only in
annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from framestyle.events import Step
    from framestyle.media.motion import Motion
    from framestyle.settings import Settings
    from framestyle.transfer.tiles import Tile


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceInfo:
    """What a loader knows about an input before its frames are decoded."""

    path: Path
    kind: str  # "image" or "video"
    width: int
    height: int
    frame_count: int | None = None  # an estimate for videos: count what is read
    fps: float | None = None
    rotation: int = 0  # degrees the container asks players to rotate (already applied)
    # (start, duration) in seconds of the file these frames are, where only a
    # part of it is read (--start/--end): the sound is taken from there.
    window: tuple[float, float] | None = None


@runtime_checkable
class Source(Protocol):
    """An opened input: one frame for an image, many for a video."""

    info: SourceInfo

    def frames(self) -> Iterator[np.ndarray]:
        """Yield frames as HxWx3 uint8 RGB arrays, in order."""

    def close(self) -> None:
        """Release the file; called once, also after an error."""


@runtime_checkable
class Writer(Protocol):
    """An output being written, frame by frame in order (the engine keeps,
    resumes and reorders frames; a writer only writes). Nothing may appear
    under the final name until :meth:`close` succeeds; :meth:`abort` removes
    partial work. Opening one has no side effects."""

    def write(self, frame: np.ndarray) -> None:
        """Add the next stylised frame (HxWx3 uint8 RGB); each frame once, in order."""

    def close(self) -> None:
        """Finish the output and move it to its final name."""

    def abort(self) -> None:
        """Discard the unfinished output; must not raise."""


# --------------------------------------------------------------------------- registered things


@dataclass(frozen=True)
class LoaderSpec:
    """A way to open input files.

    ``open(path)`` returns a :class:`Source`, or ``None`` to decline the file so
    that the next matching loader is tried. It raises
    :class:`framestyle.errors.InputError` for a file it should read but can't.
    """

    name: str
    extensions: tuple[str, ...]  # lower case, with the dot: (".png", ".jpg")
    open: Callable[[Path], Source | None]
    priority: int = 0  # higher is tried first among loaders for one extension
    description: str = ""
    kind: str = "image"  # "image" or "video": which output format a folder run gives it


@dataclass(frozen=True)
class Chunks:
    """How a writer writes a split video as chunks of frames encoded apart
    (each on a worker of its own) and then joined without encoding again.

    ``open(target, info)`` writes one chunk, the picture only, to ``target``
    (a file of the writer's first extension, under the same rules as any
    output); ``join(chunks, target, info)`` writes the output from the
    finished chunks, in order, and the source's sound.
    """

    open: Callable[..., Writer]
    join: Callable[[Sequence[Path], Path, SourceInfo], None]


@dataclass(frozen=True)
class WriterSpec:
    """A way to write outputs.

    ``open(target, info)`` returns a :class:`Writer` for the final path
    ``target``; ``is_complete(target)`` says whether an existing file there is a
    finished output that a rerun may keep (resume). A writer with ``chunks``
    has a split video encoded in chunks on the workers and joined. ``options``
    names the settings ``open`` (and ``chunks.open``) also take, as keyword
    arguments (``"crf"``); ``check(settings)`` says, before any work starts,
    what stops it writing this run's outputs (None: nothing).
    """

    name: str
    extensions: tuple[str, ...]
    open: Callable[..., Writer]
    is_complete: Callable[[Path], bool] = field(default=lambda target: target.is_file())
    priority: int = 0
    description: str = ""
    chunks: Chunks | None = None
    options: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None


@runtime_checkable
class Loss(Protocol):
    """One term of the objective, built for one frame.

    ``layers`` names the encoder activations it needs (``"relu4_2"`` …); it is
    called every optimizer step with the image being optimised (1x3xHxW, RGB in
    [0, 1]) and those activations, and returns a scalar tensor. The activations
    come in the dtype the network ran in (bfloat16 under ``--precision bf16``):
    sum in float32 (``.float()``, or :func:`framestyle.transfer.losses.gram`). Its weight
    is applied by the optimizer loop, not by the loss. On the CPU the losses
    of a batch's frames may be called at once from worker threads: a call must
    not change state that other frames share.
    """

    @property
    def layers(self) -> Sequence[str]: ...

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@runtime_checkable
class TileableLoss(Loss, Protocol):
    """A :class:`Loss` computed exactly in tiles for large images (``--tile``;
    docs/plugins.md): ``partial`` gives sums over the positions ``tile``
    owns (``tile.owned``; whole-image targets via ``tile.same``), ``total``
    the loss of the whole image of ``size`` from those sums added up."""

    def partial(self, image: torch.Tensor, features: Mapping[str, torch.Tensor],
                tile: Tile) -> Mapping[str, torch.Tensor]: ...

    def total(self, sums: Mapping[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor: ...


@dataclass(frozen=True)
class LossSpec:
    """A named loss that ``--loss NAME=WEIGHT`` (or a settings field) turns on.

    ``build(job)`` is called once per frame and returns a :class:`Loss`, or
    None to sit this frame out (the temporal loss on a video's first frame);
    targets that do not change between frames belong in
    ``job.context.cache(plugin_name)``.
    A loss with ``default_weight`` 0 is off unless asked for.
    """

    name: str
    build: Callable[[FrameJob], Loss | None]
    default_weight: float = 0.0
    description: str = ""


@dataclass(frozen=True)
class OptimizerSpec:
    """A named optimizer. ``build(params, settings)`` returns a
    ``torch.optim.Optimizer``; the loop calls ``step(closure)`` once per
    iteration, so one step must be one iteration."""

    name: str
    build: Callable[[list[torch.Tensor], Settings], torch.optim.Optimizer]
    description: str = ""


@dataclass(frozen=True)
class FlowSpec:
    """An optical flow, chosen with ``--flow NAME``. ``estimate(source,
    target)`` gets two HxWx3 uint8 RGB frames of one size (the original
    frames, at the size they are optimised at) and returns HxWx2 float32
    offsets: ``source(x) ~ target(x + flow(x))``. It is called both ways for
    each pair of frames; the consistency mask and the scene cuts are computed
    from it as for the built-in ``dis``."""

    name: str
    estimate: Callable[[np.ndarray, np.ndarray], np.ndarray]
    description: str = ""


@dataclass(frozen=True)
class ExecutorSpec:
    """A way to run a plan's units, chosen with ``--executor NAME``.

    ``build()`` returns an object with ``run(units, session)``: see
    :mod:`framestyle.engine.executors` for the contract and the built-in ``local``
    and ``subprocess`` executors. ``in_process``: it runs units in the
    driver's own process, so plugin objects registered there (the Python
    API's ``host.register``) take part; others rebuild the plugins from the
    ``-p`` arguments and the installed entry points.
    """

    name: str
    build: Callable[[], Any]
    description: str = ""
    in_process: bool = False


# --------------------------------------------------------------------------- pipeline


@runtime_checkable
class FrameContext(Protocol):
    """What a frame's plugins may use of the run (``FrameJob.context``), in
    whichever process the frame is optimised."""

    @property
    def device(self) -> torch.device:
        """Where the frame's tensors live."""

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype VGG-19 runs in under autocast; None: float32."""

    @property
    def style_weights(self) -> Sequence[float]:
        """``--style-weights``, one per style, summing to 1."""

    def encode(self, image: torch.Tensor, layers: Iterable[str]) -> Mapping[str, torch.Tensor]:
        """VGG-19 activations of ``layers`` (``"relu4_2"`` …) for ``image``
        (Bx3xHxW in [0, 1]), in the dtype the network ran in."""

    def grams(self, image: torch.Tensor, layers: Iterable[str]) -> Mapping[str, torch.Tensor]:
        """Float32 Gram matrices (mean over positions) of ``layers``, in tiles where a pass would not fit."""

    def memory_budget(self) -> int:
        """Bytes one image's optimisation may use now (``--max-memory``, free memory)."""

    def style_images(self, height: int, width: int) -> list[torch.Tensor]:
        """Every style image, sized for a content of ``height`` x ``width``."""

    def style_groups(self, height: int, width: int, palette: np.ndarray | None = None) -> list[list[torch.Tensor]]:
        """The same, grouped per ``--style``; with ``palette``, recoloured to it."""

    def cache(self, owner: str) -> dict[Any, Any]:
        """A dict for plugin ``owner`` that lives as long as the process's
        run: targets that do not change between frames."""

    def losses(self) -> Mapping[str, LossSpec]:
        """Every registered loss, by name."""

    def optimizer(self, name: str) -> OptimizerSpec:
        """The registered optimizer ``name``."""

    def step(self, event: Step) -> None:
        """Announce an iteration (``on_step``, on the driver)."""

    def as_written(self, image: torch.Tensor, content: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """``image`` as the frame it would be written as: HxWx3 uint8 (uint16
        with ``--bit-depth 16``) at ``size`` (width, height), in the content's
        colours where asked."""

    def optimise(self, job: FrameJob, init: torch.Tensor) -> StylizeResult:
        """The built-in optimisation of ``job`` from ``init`` (what the
        built-in ``stylize`` returns), calling ``step`` each iteration. From
        the ``stylize`` call the engine made for ``job``, the frame is
        optimised together with the other frames in flight."""


@dataclass(frozen=True)
class RegionMask:
    """Where one style of ``--region`` applies: ``mask`` (HxW float32 in
    [0, 1], at the frame's size) and the style group it takes
    (``context.style_groups()``'s index)."""

    mask: np.ndarray
    group: int


@dataclass
class FrameJob:
    """Everything ``init_image`` and ``stylize`` get about the frame at hand.

    ``content`` is the resized content frame, 1x3xHxW float32 RGB in [0, 1] on
    the run's device; ``previous_rgb`` is the previous stylised frame of the
    same source as written (HxWx3 uint8; ``None`` for the first frame and for
    images), ``previous_source`` its source frame at the same size, and
    ``motion`` how this frame moved from the previous one (flow, occlusion
    mask, scene cut). ``warm`` says the frame continues a shot, so it starts
    from the previous result and may stop early; ``iterations`` is its
    budget (:meth:`Settings.frame_iterations`), used as it is: 0 is none.
    ``scratch`` is for plugins to share per-frame work.
    """

    source: SourceInfo
    index: int
    content: torch.Tensor
    settings: Settings
    context: FrameContext
    motion: Motion | None = None
    warm: bool = False
    iterations: int = 0
    scratch: dict[str, Any] = field(default_factory=dict)
    output: Path | None = None  # where the result goes (for previews); None from the API
    previous_rgb: np.ndarray | None = None
    previous_source: np.ndarray | None = None
    # This frame's weight for each of context.style_groups() where a
    # --style-at schedule gives it its own; None: context.style_weights.
    style_weights: tuple[float, ...] | None = None
    regions: tuple[RegionMask, ...] = ()  # --region: styles of their own, each over its mask

    @property
    def new_shot(self) -> bool:
        """The first frame of a source, or the first after a scene cut."""
        return self.motion is None or self.motion.cut


@dataclass(frozen=True)
class StylizeResult:
    """What a ``stylize`` implementation returns."""

    image: torch.Tensor  # 1x3xHxW RGB in [0, 1] (clamped on writing)
    iterations: int
    loss: float
    losses: Mapping[str, float]  # weighted value of each loss term
    tiles: int = 0  # the most tiles a level was optimised in (0: whole)
