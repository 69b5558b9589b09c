"""The run: inputs -> frames -> stylised frames -> outputs, one item at a time.

Each input succeeds or fails on its own: a bad file is logged in one line and
the run goes on (``-x`` stops at the first). Outputs appear under their final
names only when complete, so a rerun skips them (resume) and an interrupted
run leaves nothing half-written behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from framestyle.discover import WorkItem, plan
from framestyle.errors import FramestyleError, InputError, PluginError, UsageError
from framestyle.host import PluginHost
from framestyle.images import preview_path, resize
from framestyle.motion import estimate as estimate_motion
from framestyle.motion import warp_error as motion_warp_error
from framestyle.report import FrameLog
from framestyle.runrecord import ItemRecord, write_records
from framestyle.runtime import Runtime, to_tensor
from framestyle.settings import COLOR_MODES, MAX_PIXELS, Settings
from framestyle.types import (
    FrameEnd,
    FrameJob,
    FrameStart,
    RunEnd,
    RunStart,
    Source,
    SourceEnd,
    SourceInfo,
    SourceStart,
    StylizeResult,
    Writer,
    WriterSpec,
)
from framestyle.weights import Weights

log = logging.getLogger("framestyle")


@dataclass(frozen=True)
class Previous:
    """The last frame of a source, at the size being optimised."""

    content: np.ndarray  # the original frame
    output: np.ndarray  # the stylised frame as written (what a resumed run reads back)


@dataclass
class Outcome:
    status: str  # "done", "skipped", "failed", "interrupted"
    frames: int = 0
    message: str = ""
    kind: str = ""
    iterations: int = 0
    loss: float | None = None
    seconds: float = 0.0


def validate(settings: Settings, host: PluginHost) -> None:
    """Check every name in the settings before any work starts."""
    hooks = host.hooks  # collecting the registries calls the register_* hooks, once
    hooks.optimizers().get(settings.optimizer)
    losses = hooks.losses()
    for name in settings.losses:
        losses.get(name)
    if settings.loader:
        hooks.loaders().get(settings.loader)
    if settings.writer:
        hooks.writers().get(settings.writer)
    if settings.size < 16:
        raise UsageError(f"--size {settings.size}: must be at least 16 pixels")
    if settings.iterations < 0:
        raise UsageError(f"--iterations {settings.iterations}: must not be negative")
    if settings.preserve_colors not in (None, *COLOR_MODES):
        raise UsageError(f"--preserve-colors {settings.preserve_colors}: choose luminance or histogram")
    if not 0.1 <= settings.style_scale <= 4:
        raise UsageError(f"--style-scale {settings.style_scale}: must be between 0.1 and 4")
    if not 1 <= settings.scales <= 12 or not 0 < settings.final_share <= 1:
        raise UsageError("--scales must be from 1 to 12 and --final-share between 0 and 1")
    if settings.preview < 0:
        raise UsageError(f"--preview {settings.preview}: must not be negative")
    if not 1 <= settings.max_pixels <= MAX_PIXELS:
        raise UsageError(f"--max-pixels {settings.max_pixels}: must be between 1 and {MAX_PIXELS}")
    if settings.size * settings.size > settings.max_pixels:
        # Checked before anything is allocated: a square input would be optimised at size x size.
        raise UsageError(f"--size {settings.size}: a {settings.size}x{settings.size} image is more than "
                         f"--max-pixels {settings.max_pixels}")


class Engine:
    def __init__(self, settings: Settings, host: PluginHost, weights: Weights | None = None) -> None:
        validate(settings, host)
        self.settings = settings
        self.hooks = host.hooks
        self.plan = plan(settings, self.hooks.loaders(), self.hooks.writers())
        self.runtime = Runtime(settings, self.hooks, weights)

    def run(self) -> RunEnd:
        started = time.perf_counter()
        items = self.plan.items
        for path in self.plan.unclaimed:
            log.debug("skipped %s: no loader reads %s files", path, path.suffix or "extensionless")
        if self.plan.unclaimed:
            log.info("skipped %d file(s) that are not images (-v lists them)", len(self.plan.unclaimed))
        failed: list[tuple[Path, str]] = []
        for path, message in self.plan.failures:
            log.error("%s: %s", path, message)
            failed.append((path, message))
        self.hooks.on_run_start(
            RunStart(self.settings, len(items), str(self.runtime.device), self.runtime.weights.source)
        )
        done = skipped = 0
        interrupted = False
        records: list[ItemRecord] = []
        try:
            for number, item in enumerate(items, start=1):
                if failed and self.settings.exitfirst:
                    break
                outcome = self.process(item, number, len(items))
                records.append(ItemRecord(str(item.path), str(item.output), outcome.kind, outcome.status,
                                          outcome.frames, outcome.iterations, round(outcome.seconds, 3),
                                          outcome.loss, outcome.message))
                if outcome.status == "done":
                    done += 1
                elif outcome.status == "skipped":
                    skipped += 1
                elif outcome.status == "failed":
                    failed.append((item.path, outcome.message))
        except KeyboardInterrupt:
            interrupted = True
        self.write_records(records, interrupted)
        exit_code = 130 if interrupted else 1 if failed else 0
        summary = RunEnd(done, skipped, failed, interrupted, time.perf_counter() - started, exit_code)
        self.hooks.on_run_end(summary)
        return summary

    def write_records(self, records: list[ItemRecord], interrupted: bool) -> None:
        """The resolved settings and the manifest beside the outputs, and the
        HTML report with --report. Losing them must not fail the run."""
        assert self.settings.output is not None
        try:
            manifest = write_records(self.settings, Path(self.settings.output), self.plan.to_file, records)
            if manifest is not None and self.settings.report and not interrupted:
                from framestyle.htmlreport import write_report

                log.info("report: %s", write_report(manifest))
        except Exception as exc:  # the outputs are what matter; their records are secondary
            log.debug("traceback", exc_info=True)
            log.warning("could not write the run's records beside the outputs: %s", exc)

    # one input ------------------------------------------------------------------

    def process(self, item: WorkItem, number: int, total: int) -> Outcome:
        started = time.perf_counter()
        writer_spec = self.choose_writer(item.output)
        if not self.settings.overwrite and writer_spec.is_complete(item.output):
            self.hooks.on_source_start(SourceStart(number, total, item.path, item.output, None))
            outcome = Outcome("skipped", message="already complete (--overwrite redoes it)")
        else:
            outcome = self.stylize_item(item, writer_spec, number, total)
        if outcome.status == "failed":
            log.error("%s: %s", item.path, outcome.message)
        outcome.seconds = time.perf_counter() - started
        self.hooks.on_source_end(
            SourceEnd(number, item.path, item.output, outcome.status, outcome.frames,
                      outcome.seconds, outcome.message)
        )
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
        return outcome

    def stylize_item(self, item: WorkItem, writer_spec: WriterSpec, number: int, total: int) -> Outcome:
        source: Source | None = None
        writer: Writer | None = None
        outcome = Outcome("failed")
        try:
            source = self.open_source(item.path)
            self.hooks.on_source_start(SourceStart(number, total, item.path, item.output, source.info))
            with writing(item.output):
                writer = writer_spec.open(item.output, source.info)
            outcome.kind = source.info.kind
            frames = self.stylize_frames(source, writer, item.output)
            with writing(item.output):
                writer.close()
            writer = None
            preview_path(item.output).unlink(missing_ok=True)  # the result itself is there now
            outcome.frames = len(frames)
            outcome.iterations = sum(frame.iterations for frame in frames)
            outcome.loss = frames[-1].loss if math.isfinite(frames[-1].loss) else None
            outcome.status = "done"
        except (UsageError, PluginError):
            raise
        except KeyboardInterrupt:
            outcome.status = "interrupted"
        except FramestyleError as exc:
            outcome.message = str(exc)
        except OSError as exc:
            outcome.message = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        except Exception as exc:  # a plugin's or a codec's bug must not end the batch
            log.debug("traceback for %s", item.path, exc_info=True)
            outcome.message = f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                writer.abort()
            if source is not None:
                source.close()
        if source is None:  # it failed to open: still announce it before its end
            self.hooks.on_source_start(SourceStart(number, total, item.path, item.output, None))
        return outcome

    def stylize_frames(self, source: Source, writer: Writer, output: Path) -> list[FrameEnd]:
        """Stylise every frame in order; frames an interrupted run finished
        are reused, not redone."""
        info = source.info
        kept = self.resume(writer, info)
        report = FrameLog(info, output, self.settings, self.runtime)
        previous: Previous | None = None
        for index, frame in enumerate(source.frames()):
            end, previous = self.stylize_frame(info, index, frame, previous, writer, output, reuse=index < kept)
            report.add(end)
            self.hooks.on_frame_end(end)
        if not report.frames:
            raise InputError("no frames could be read")
        report.finish()
        return report.frames

    def stylize_frame(self, info: SourceInfo, index: int, frame: np.ndarray, previous: Previous | None,
                      writer: Writer, output: Path, reuse: bool) -> tuple[FrameEnd, Previous]:
        """One frame. A video frame that continues a shot starts warm from the
        previous result warped by the flow of the original frames; the first
        frame and the first after a scene cut start cold."""
        started = time.perf_counter()
        content_rgb, content, size = self.runtime.prepare_content(frame)
        motion = estimate_motion(previous.content, content_rgb) if previous else None
        continues = previous is not None and motion is not None and not motion.cut
        warm = continues and self.settings.warm_start
        video = info.kind == "video"
        budget = self.settings.cold_iterations() if video and not warm else self.settings.iterations
        estimate = max(info.frame_count or 0, index + 1) if video else info.frame_count
        self.hooks.on_frame_start(FrameStart(info.path, index, estimate, size[0], size[1], budget))
        if reuse:
            written = writer.kept(index)  # type: ignore[attr-defined]
            result = StylizeResult(content, 0, math.nan, {})
        else:
            last = to_tensor(previous.output, self.runtime.device) if previous else None
            job = FrameJob(info, index, content, last, self.settings, self.runtime,
                           motion=motion, warm=warm, iterations=budget, output=output)
            result = self.hooks.stylize(job, self.hooks.init_image(job))
            if not bool(torch.isfinite(result.image).all()):  # whichever plugin made it
                raise InputError(f"frame {index + 1}: the result has NaN or infinite pixels; nothing was written")
            written = self.runtime.finish(result.image, content, size)
        with writing(output):
            writer.write(written)  # a reused frame too: the writer encodes every frame again
        # The next frame starts from this one as written, brought back to the
        # working size: exactly what a resumed run reads back from disk, so a
        # resumed video is identical to an uninterrupted one even when small
        # frames are optimised enlarged.
        styled = resize(written, content_rgb.shape[1], content_rgb.shape[0])
        warp_error = motion_warp_error(styled, previous.output, motion) if continues else None  # type: ignore[union-attr,arg-type]
        end = FrameEnd(info.path, index, result.iterations, time.perf_counter() - started, result.loss,
                       dict(result.losses), warm=warm, cut=bool(motion and motion.cut), reused=reuse,
                       warp_error=warp_error)
        return end, Previous(content_rgb, styled)

    def resume(self, writer: Writer, info: SourceInfo) -> int:
        """How many frames of this source a previous, interrupted run finished."""
        if not hasattr(writer, "resume"):
            return 0
        kept = writer.resume(fingerprint(self.settings, info, self.runtime), not self.settings.overwrite)
        if kept:
            log.info("%s: resuming after frame %d (finished frames are reused)", info.path, kept)
        return kept

    # choosing plugins -------------------------------------------------------------

    def open_source(self, path: Path) -> Source:
        loaders = self.hooks.loaders()
        if self.settings.loader:
            candidates = [loaders.get(self.settings.loader)]
        else:
            candidates = loaders.for_extension(path.suffix)
        if not candidates:
            raise InputError(
                f"no loader reads {path.suffix or 'extensionless'} files "
                f"(installed: {', '.join(loaders.names()) or 'none'})"
            )
        for spec in candidates:
            source = spec.open(path)
            if source is not None:
                return self.within_limits(source)
        raise InputError(f"no loader accepted the file (tried {', '.join(s.name for s in candidates)})")

    def within_limits(self, source: Source) -> Source:
        """Refuse a source whose frames are larger than --max-pixels, from
        its header, before a frame is decoded."""
        info = source.info
        if info.width * info.height > self.settings.max_pixels:
            source.close()
            what = "its frames are" if info.kind == "video" else "it is"
            raise InputError(f"{what} {info.width}x{info.height} pixels, more than the limit of "
                             f"{self.settings.max_pixels:,} (--max-pixels); not decoded")
        return source

    def choose_writer(self, target: Path) -> WriterSpec:
        writers = self.hooks.writers()
        if self.settings.writer:
            return writers.get(self.settings.writer)
        candidates = writers.for_extension(target.suffix)
        if not candidates:
            raise UsageError(f"no writer makes {target.suffix or 'extensionless'} files ({target})")
        return candidates[0]


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Report an OS error while writing (disk full, permission, a vanished
    folder) as this output's failure, naming the output."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def fingerprint(settings: Settings, info: SourceInfo, runtime: Runtime) -> str:
    """What decides a source's stylised frames: the settings that shape the
    result, the source file as it is, and the weights. Finished frames are
    reused only by a run with the same fingerprint."""
    shaping = settings.to_json()
    for name in ("inputs", "output", "verbosity", "overwrite", "exitfirst", "loader", "writer",
                 "format", "video_format", "device"):
        shaping.pop(name, None)
    stat = info.path.stat()
    blob = json.dumps([shaping, str(info.path.resolve()), stat.st_size, stat.st_mtime_ns,
                       runtime.weights.source], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def run(settings: Settings, host: PluginHost | None = None, weights: Weights | None = None) -> RunEnd:
    """Run ``settings`` with a fresh plugin host (or the one given)."""
    return Engine(settings, host or PluginHost(), weights).run()
