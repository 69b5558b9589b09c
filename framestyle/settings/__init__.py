"""Run settings: one dataclass shared by the CLI, the Python API and plugins,
checked in one place (:meth:`Settings.check`); where they come from:
:mod:`.files` (presets and config files), :mod:`.options` (the command line)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Layer names follow Gatys et al.; the activations are taken after the ReLU
# (``relu4_2`` is the rectified output of ``conv4_2``), as in their Caffe code.
DEFAULT_CONTENT_LAYER = "relu4_2"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# --preserve-colors: see framestyle.transfer.colors.
COLOR_MODES = ("luminance", "histogram")
WARM_STARTS = ("frame", "change")  # --warm-from
PADDINGS = ("zero", "reflect", "replicate")  # --padding
MAX_FPS = 1000  # --fps: what players and x264 take
MAX_CRF = 63  # --crf: the widest scale of the formats that have one (VP9's); each checks its own
MAX_MARGIN = 64  # --margin: catches a mistyped value; 8 already puts the edges inside (docs/guide/borders.md)
POOLINGS = ("max", "avg")  # --pooling

# Inputs with more pixels than this are refused from their header, before
# decoding (decompression bombs); Pillow itself refuses twice its own limit.
MAX_PIXELS = 178_956_970

# --batch-size at most this (auto stays well below what memory holds).
MAX_BATCH = 64

# The losses whose weights have options of their own (--style-weight …).
LOSS_OPTIONS = {"content": "content_weight", "style": "style_weight", "tv": "tv_weight",
                "temporal": "temporal_weight"}

DEFAULT_STYLE_LAYERS: dict[str, float] = {
    "relu1_1": 1.0,
    "relu2_1": 0.75,
    "relu3_1": 0.2,
    "relu4_1": 0.2,
    "relu5_1": 0.2,
}


# --start/--end: a frame number (from 1) or a time in seconds ("12.5s").
POSITION = re.compile(r"(?P<frame>\d+)|(?P<seconds>\d+(?:\.\d*)?|\.\d+)s")


def position_problem(option: str, text: str | None) -> str | None:
    """What is wrong with a ``--start``/``--end`` value, or None."""
    if text is None:
        return None
    match = POSITION.fullmatch(str(text).strip())
    if match is None:
        return f"{option} {text}: a frame number (1, 2, …) or a time such as 12.5s"
    if match["frame"] is not None and int(match["frame"]) == 0:
        return f"{option} 0: frames are counted from 1 (or give a time: 0s)"
    return None


@dataclass(frozen=True)
class StyleChange:
    """One ``--style-at``: where, and the styles (path, weight) from there on."""

    position: str
    styles: tuple[tuple[Path, float], ...]


def parse_change(text: str) -> StyleChange:
    """``12.5s=a.jpg+b.jpg:0.3`` → StyleChange("12.5s", ((a.jpg, 1.0), (b.jpg, 0.3)))."""
    position, equals, styles = text.partition("=")
    if not equals or position_problem("--style-at", position) is not None:
        raise ValueError(f"--style-at {text}: give POSITION=STYLE, POSITION a frame number (from 1) or a "
                         "time such as 12.5s")
    parsed = []
    for part in styles.split("+"):
        path, colon, weight = part.strip().rpartition(":") if ":" in part else ("", "", "")
        path = path if colon else part.strip()
        try:
            value = float(weight) if colon else 1.0
        except ValueError:
            raise ValueError(f"--style-at {text}: {weight!r} is not a weight") from None
        if not path or value <= 0 or not math.isfinite(value):
            raise ValueError(f"--style-at {text}: each style needs a path and a positive weight")
        parsed.append((Path(path), value))
    return StyleChange(position.strip(), tuple(parsed))


def parse_region(text: str) -> tuple[Path, Path]:
    """``--region MASK=STYLE`` as (mask, style); ValueError if it is not that."""
    mask, equals, style = text.partition("=")
    if not equals or not mask or not style:
        raise ValueError(f"--region {text!r}: expected MASK=STYLE (a black-and-white image, then a style)")
    return Path(mask), Path(style)


def parse_tile(text: str) -> str:
    """``--tile``: ``auto``, ``off`` or a tile side of at least 64 pixels; ValueError otherwise."""
    text = str(text).strip().lower()
    if text in ("auto", "off") or text.isdigit() and int(text) >= 64:
        return text if not text.isdigit() else str(int(text))
    raise ValueError(f"--tile {text}: use auto, off or a tile side in pixels (at least 64)")


def parse_memory(text: str) -> int:
    """``8G``, ``8GiB``, ``512M``, ``1.5T`` or bytes; ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not an amount of memory; use e.g. 8G or 512M")
    value = float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " ")
    if value < 1:
        raise ValueError(f"{text!r}: must be positive")
    return int(value)


def parse_layer_weights(text: str) -> dict[str, float]:
    """``relu1_1:1,relu2_1:0.75`` (a bare name means weight 1); ValueError if malformed."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad layer weight {part!r}; use NAME:WEIGHT") from None
    if not weights:
        raise ValueError("no layers given")
    return weights


@dataclass
class Settings:
    """Everything that decides what a run produces.

    Loss weights multiply scale-free losses (see :mod:`framestyle.transfer.losses`), so
    the same weights work whichever VGG-19 weights are loaded.
    """

    inputs: list[Path] = field(default_factory=list)
    style: list[Path] = field(default_factory=list)  # images, or folders whose images form one style
    output: Path | None = None
    style_weights: list[float] | None = None  # blend weights, one per style; None: equal
    style_scale: float = 1.0  # style image's long side relative to the content's (brush size)
    preserve_colors: str | None = None  # None, "luminance" or "histogram" (see framestyle.transfer.colors)
    # Videos: "POSITION=STYLE[+STYLE[:WEIGHT]]" changes (framestyle.engine.schedule),
    # cross-faded over style_fade frames unless the video cuts there.
    style_at: list[str] = field(default_factory=list)
    style_fade: int = 12
    # Styles by region: "MASK=STYLE" each (framestyle.engine.regions); the
    # pixels no mask covers take --style ("style") or stay the content ("content").
    regions: list[str] = field(default_factory=list)
    region_rest: str = "style"
    region_follow: bool = False  # a video's one-image masks move with its flow from its first frame
    color_only: bool = False  # keep the content's luminance, take only the stylised colours (transfer.colors)

    size: int = 512  # long side of the output; larger inputs are resized down
    max_pixels: int = MAX_PIXELS  # inputs larger than this are refused before they are decoded
    iterations: int = 300  # per image; the most a warm-started video frame may use
    first_iterations: int | None = None  # a video's cold frames (first, after a cut); None: iterations
    # Coarse-to-fine for images and cold video frames: sizes √2 apart, coarse
    # first (1: full size only); why 4 and 30%: docs/performance/speed.md (quality race).
    scales: int = 4
    final_share: float = 0.3  # with scales > 1: the share of the iterations spent at full size
    warm_start: bool = True  # videos: start each frame from the previous result (False: all cold)
    # What a warm frame starts from and is held to: "change", its own content
    # plus the previous frame's stylisation change, warped; "frame", the
    # previous result warped (transfer.warm.warped_previous).
    warm_from: str = "frame"
    flow: str = "dis"  # the optical flow between video frames, by name (built-in: OpenCV's DIS; plugins add more)
    min_iterations: int = 20  # a warm frame (or an image's level) never stops before this
    tolerance: float = 0.005  # a frame's level stops when 10 iterations improve its loss less than this
    # Frames optimised together: images of one size, or a video's segments.
    # 0 is auto: on CUDA what its free memory holds; on the CPU 4 images (up
    # to 512 px) and videos unsplit (Runtime.auto_batch_size; docs/performance/speed.md).
    batch_size: int = 0
    executor: str = "local"  # what runs the planned units (--executor; plugins add more)
    ray_address: str | None = None  # --executor ray: the cluster to join (None: the running one, else a local one)
    worker_cores: int = 4  # --executor ray: CPU cores per worker on nodes without a GPU
    optimizer: str = "lbfgs"
    history: int = 100  # L-BFGS pairs kept; fewer where memory is short (framestyle.transfer.memory)
    # --tile: "auto" (tiles only when the whole image would not fit), "off",
    # or the side in pixels of the tiles (framestyle.transfer.tiles).
    tile: str = "auto"
    max_memory: int | None = None  # bytes an image's optimisation may use; None: what the device has free
    learning_rate: float | None = None  # None: the optimizer's own default
    init: str = "content"  # "content", "noise" or the path of an image
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # VGG-19's arithmetic: fp32, bf16, fp16, or auto (bf16 where the device is fast at it)
    compile: bool = False  # run VGG-19 through torch.compile (docs/performance/speed.md: slower on the CPUs measured)
    weights: Path | None = None

    # The built-in losses' weights (LOSS_OPTIONS); None: the loss's own
    # default_weight, which lives on its LossSpec only.
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    temporal_weight: float | None = None  # videos: stay close to the warped previous frame
    losses: dict[str, float] = field(default_factory=dict)  # other losses by name
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    pooling: str = "max"  # "max" or "avg" (Gatys et al. preferred avg for generation)
    # How VGG-19's convolutions pad: "zero" (the network as published), or
    # "reflect" / "replicate" (no dark frame around the image for its edges to answer).
    padding: str = "zero"
    # Pixels of canvas, the picture mirrored, optimised around every frame and
    # cut away (framestyle.transfer.margin): the edges come out like the inside.
    margin: int = 8

    format: str = "png"  # output format for images when OUTPUT is a folder
    video_format: str = "mp4"  # output format for videos when OUTPUT is a folder
    # The encoder's constant-quality level for formats that have one (H.264,
    # HEVC, VP9; lower is better and larger); None: the format's own default.
    crf: int | None = None
    # Bits a colour channel of the frames written: 16 keeps the optimised
    # pixels' fine gradations (PNG and TIFF: images, frame folders, sequences).
    bit_depth: int = 8
    # Frames a second for inputs that have no rate of their own (image
    # sequences); a video file keeps its own.
    fps: float = 24.0
    # Part of each video (framestyle.media.window): a frame number, counted
    # from 1, or a time such as "12.5s"; None: from its start, to its end.
    start: str | None = None
    end: str | None = None
    loader: str | None = None
    writer: str | None = None
    overwrite: bool = False
    dry_run: bool = False  # print the plan and an estimate of the time; write nothing
    exitfirst: bool = False
    preview: int = 0  # write the current result of an image every N iterations (0: never)
    report: bool = False  # write the HTML report at the end of the run
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose

    def check(self) -> None:
        """Refuse, with one line naming the option, what these settings alone
        show to be wrong: every run goes through here (the command line, the
        Python API and config files alike) before any work. Names that
        plugins register and the device are checked against them, by the run."""
        from framestyle.errors import UsageError, did_you_mean

        for problem in self.problems():
            raise UsageError(problem)
        from framestyle.transfer.vgg import LAYER_INDEX  # torch: only once the settings are otherwise sound

        for name in [self.content_layer, *self.style_layers]:
            if name not in LAYER_INDEX:
                raise UsageError(f"unknown VGG-19 layer {name!r}{did_you_mean(name, LAYER_INDEX)}")

    def problems(self) -> Iterator[str]:
        """What :meth:`check` refuses, first problem first (no torch needed)."""
        if self.size < 16:
            yield f"--size {self.size}: must be at least 16 pixels"
        if self.iterations < 0:
            yield f"--iterations {self.iterations}: must not be negative"
        if self.init not in ("content", "noise") and not Path(self.init).is_file():
            yield f"--init {self.init}: not 'content', 'noise' or an image file"
        if self.preserve_colors not in (None, *COLOR_MODES):
            yield f"--preserve-colors {self.preserve_colors}: choose luminance or histogram"
        if self.color_only and self.preserve_colors == "luminance":
            yield "--color-only with --preserve-colors luminance would give the content back: choose one"
        yield from self.schedule_problems()
        if not 0.1 <= self.style_scale <= 4:
            yield f"--style-scale {self.style_scale}: must be between 0.1 and 4"
        if self.style_weights is not None and (any(not math.isfinite(w) or w < 0 for w in self.style_weights)
                                               or sum(self.style_weights) <= 0):
            yield "--style-weights must be non-negative numbers, not all zero"
        if not 1 <= self.scales <= 12 or not 0 < self.final_share <= 1:
            yield "--scales must be from 1 to 12 and --final-share between 0 and 1"
        if not 0 <= self.batch_size <= MAX_BATCH:
            yield f"--batch-size {self.batch_size}: must be auto or from 1 to {MAX_BATCH}"
        for option, value, choices in (("--warm-from", self.warm_from, WARM_STARTS),
                                       ("--padding", self.padding, PADDINGS),
                                       ("--pooling", self.pooling, POOLINGS),
                                       ("--precision", self.precision.strip().lower(), PRECISIONS)):
            if value not in choices:
                yield f"{option} {value}: choose {', '.join(choices)}"
        try:
            parse_tile(self.tile)
        except ValueError as exc:
            yield str(exc)
        if not 0 <= self.margin <= MAX_MARGIN:
            yield f"--margin {self.margin}: must be from 0 to {MAX_MARGIN} pixels"
        if self.region_rest not in ("style", "content"):
            yield f"--region-rest {self.region_rest}: style or content"
        for region in self.regions:
            try:
                mask, style = parse_region(region)
            except ValueError as error:
                yield str(error)
                continue
            if not mask.exists():
                yield f"--region mask {mask}: no such file"
            elif not style.exists():
                yield f"--region {region}: no style {style}"
        if self.bit_depth not in (8, 16):
            yield f"--bit-depth {self.bit_depth}: 8 or 16"
        if self.crf is not None and not 0 <= self.crf <= MAX_CRF:
            yield f"--crf {self.crf}: must be 0 (best) to {MAX_CRF}"
        if not 0 < self.fps <= MAX_FPS:
            yield f"--fps {self.fps:g}: must be above 0 and at most {MAX_FPS}"
        for option, position in (("--start", self.start), ("--end", self.end)):
            if (problem := position_problem(option, position)) is not None:
                yield problem
        if self.preview < 0:
            yield f"--preview {self.preview}: must not be negative"
        if not 1 <= self.max_pixels <= MAX_PIXELS:
            yield f"--max-pixels {self.max_pixels}: must be between 1 and {MAX_PIXELS}"
        elif self.size * self.size > self.max_pixels:
            # Checked before anything is allocated: a square input would be optimised at size x size.
            yield f"--size {self.size}: a {self.size}x{self.size} image is more than --max-pixels {self.max_pixels}"

    def schedule_problems(self) -> Iterator[str]:
        if not 0 <= self.style_fade <= 10_000:
            yield f"--style-fade {self.style_fade}: must be from 0 to 10000 frames"
        for text in self.style_at:
            try:
                change = parse_change(text)
            except ValueError as error:
                yield str(error)
                continue
            for path, _ in change.styles:
                if not path.exists():
                    yield f"--style-at {text}: {path} does not exist"

    def loss_weights(self) -> dict[str, float]:
        """The weight of every loss asked for by name: the built-in losses'
        own options where given, then ``--loss NAME=WEIGHT``."""
        weights = {name: getattr(self, option) for name, option in LOSS_OPTIONS.items()
                   if getattr(self, option) is not None}
        weights.update(self.losses)
        return weights

    def with_loss_defaults(self, defaults: Mapping[str, float]) -> Settings:
        """These settings with each built-in loss's weight resolved, from
        ``defaults`` (the specs' default weights) where not given: what the
        run's records show."""
        resolved = dataclasses.replace(self)
        for name, option in LOSS_OPTIONS.items():
            if getattr(self, option) is None and name in defaults:
                setattr(resolved, option, defaults[name])
        return resolved

    def frame_iterations(self, video: bool, warm: bool) -> int:
        """A frame's iteration budget, decided here only: ``iterations``, or
        for a video's cold frames (its first, the first after a cut)
        ``first_iterations`` when given. A warm frame may stop sooner."""
        if video and not warm and self.first_iterations is not None:
            return self.first_iterations
        return self.iterations

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy, for run reports and ``--json`` output."""

        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
