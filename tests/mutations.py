"""Break the code on purpose, one way at a time, and check that the test
meant to catch each break fails; every file is restored afterwards.

    python3 dev.py mutations                     # all of them (~15 min on 2 cores)
    python3 dev.py mutations blend sigterm       # those whose name has these words
    python3 dev.py mutations --sample 3          # 3 of those whose file the last commit changed, 3 others

A test that still passes with its break in place proves nothing: add a break
here when you write a test whose point is to catch one. The harness proves
itself: each break's tests first run on the clean code, where they must
pass; on the broken code a break counts as caught only when a test fails on
an assertion (``assert``, ``pytest.fail``, ``pytest.raises`` unmet), not on
an import error, a crash or an error in a fixture; a break whose text is no
longer in its file fails the harness. ``--sample N`` is what ``dev.py test``
runs after the suite: N of the breaks of the files the last commit changed
and N of the others, each a different few from day to day, with
``--proved-clean``: the suite that just passed was their run on the clean
code. Exit status 1 if
any break went unnoticed or could not be tried.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent

# (what is broken, file, text, replacement, the pytest arguments that must fail)
BREAKS = [
    ("the built-in optimisation never joins the batch", "framestyle/engine/runner/context.py",
     "        if call is not None and call.job is job and not call.handed_over:",
     "        if False:",
     "tests/test_plugins.py -k passes_leaves"),
    ("frames in flight left waiting when the run stops", "framestyle/engine/runner/scheduler.py",
     "            for _, work in [*self.active, *self.waiting]:\n                work.drop()",
     "            for _, work in []:\n                work.drop()",
     "tests/test_plugins.py -k unwinds"),
    ("a worker's message carries every optimiser step", "framestyle/engine/executors/ray/messages.py",
     "            if place is not None:\n                self.events[place] = None",
     "            if False:\n                pass",
     "tests/test_scale.py -k newest_step"),
    ("a unit released although one of its needs failed", "framestyle/engine/executors/__init__.py",
     "self.waiting.pop(uid, []) if self.ready(unit)]", "self.waiting.pop(uid, [])]",
     "tests/test_scale.py -k ledger"),
    ("a killed run's records lost: nothing journaled", "framestyle/records/manifest.py",
     '        self.file.write(json.dumps(item.as_dict(), default=str) + "\\n")', "        pass",
     "tests/test_interrupt.py -k journal"),
    ("settings not checked before a run", "framestyle/engine/driver.py",
     "    settings.check()\n", "    pass\n",
     "tests/test_cli.py -k same_line"),
    ("bf16 silently not used", "framestyle/engine/runtime.py",
     "    with torch.autocast(image.device.type, dtype=dtype):",
     "    with torch.autocast(image.device.type, enabled=False):",
     "tests/test_speed.py::test_the_network_runs_in_the_precision_asked_for"),
    ("no-frames message changed", "framestyle/media/video.py",
     'raise InputError("not a video OpenCV can read")', 'raise InputError("cannot be read")',
     "tests/test_bad_inputs.py::test_damaged_videos_keep_what_can_be_read"),
    ("blend weights ignored (equal)", "framestyle/builtin/losses.py",
     "weights = list(job.style_weights or job.context.style_weights)", "weights = [1.0] * len(groups)",
     "tests/test_artist.py -k blend"),
    ("style folder: first image only", "framestyle/builtin/losses.py",
     "each = [of_image(style) for style in group]", "each = [of_image(style) for style in group[:1]]",
     "tests/test_artist.py -k style_folder"),
    ("warm start off", "framestyle/engine/runner/chain.py",
     "and not motion.cut and settings.warm_start", "and not motion.cut and settings.warm_start and False",
     "tests/test_video.py::test_warm_start_and_temporal_loss_each_lower_the_warp_error"),
    ("warm start filled from the raw frame where the flow is uncertain", "framestyle/builtin/stylize.py",
     "        warped, _ = warped_previous(job)\n        return warped.clone()",
     "        warped, mask = warped_previous(job)\n        return mask * warped + (1 - mask) * job.content",
     "tests/test_motion.py -k uncertain"),
    ("the warp samples against the flow", "framestyle/media/motion.py",
     "cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1],",
     "cv2.remap(image, grid_x - flow[..., 0], grid_y - flow[..., 1],",
     "tests/test_motion.py -k perfectly_consistent"),
    ("the bar drawn on a dumb terminal", "framestyle/builtin/progress.py",
     'return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"', "return sys.stderr.isatty()",
     "tests/test_terminal.py -k dumb"),
    ("the bar drawn into a pipe", "framestyle/builtin/progress.py",
     'return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"',
     'return os.environ.get("TERM", "") != "dumb"',
     "tests/test_terminal.py -k pipe"),
    ("the Keras file's block 3 read out of order", "framestyle/transfer/weights.py",
     'return [f"block{b}_conv{c}" for b, convs',
     'return [f"block{b}_conv{5 - c if b == 3 and c in (2, 3) else c}" for b, convs',
     "tests/test_weights.py -k caffe"),
    ("the source's AAC encoded again, a generation lost", "framestyle/media/encodings.py",
     'codec = "copy" if audio_codec in fmt.audio_kept else fmt.audio_encoder', 'codec = fmt.audio_encoder',
     "tests/test_video.py -k keeps_frame_count"),
    ("--init IMAGE starts from the content", "framestyle/builtin/stylize.py",
     "    if init == \"content\":\n        return job.content.clone()",
     "    if init != \"noise\":\n        return job.content.clone()",
     "tests/test_stylize.py -k init_image"),
    ("MPEG streams sought as if exactly", "framestyle/media/video.py",
     'EXACT_SEEK = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ogv")',
     'EXACT_SEEK = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ogv", ".ts", ".mpg")',
     "tests/test_video.py -k frames_from"),
    ("a segment decodes every frame before its first", "framestyle/media/video.py",
     "if start > 0 and self.path.suffix.lower() in EXACT_SEEK and self.seek(start):",
     "if False:",
     "tests/test_segments.py -k seeks"),
    ("nodes that join mid-run never get workers", "framestyle/engine/executors/ray/executor.py",
     "fresh = [place for place in self.cluster.nodes_now(settings) if place.node not in known]",
     "fresh = [place for place in self.layout if place.node not in known]",
     "tests/test_ray.py -k joins"),
    ("a killed folder's finished photos done again", "framestyle/engine/planning/plan.py",
     "        complete = not settings.overwrite and writer_for(item.output, settings, hooks).is_complete(item.output)",
     "        complete = False",
     "tests/test_interrupt.py -k folder_run_killed"),
    ("an output made with other settings skipped as complete", "framestyle/engine/planning/plan.py",
     "if complete and recorded.get(str(item.output), item.made_with) not in",
     "if False and recorded.get(str(item.output), item.made_with) not in",
     "tests/test_cli.py -k changed_setting"),
    ("the ETA counts iterations, not their pixels", "framestyle/builtin/progress.py",
     "work[0] += iterations * (event.pixels or work[1] / max(1, event.iterations))",
     "work[0] += iterations * work[1] / max(1, event.iterations)", "tests/test_terminal.py -k eta"),
    ("--dry-run runs the job", "framestyle/engine/driver.py",
     "        if self.settings.dry_run:\n            return self.dry_run()",
     "        if False:\n            return self.dry_run()",
     "tests/test_cli.py -k dry_run"),
    ("the dry run's estimate leaves the iterations out", "framestyle/engine/dry_run.py",
     "total += timing.per_frame + iterations * timing.per_iteration", "total += timing.per_frame",
     "tests/test_dry_run.py"),
    ("--final-share ignored", "framestyle/transfer/frame.py",
     "    final = max(1, round(budget * final_share))", "    final = max(1, round(budget * 0.3))",
     "tests/test_stylize.py -k final_share"),
    ("a plugin's traceback kept from -v", "framestyle/errors.py",
     "    if isinstance(error, HookFailure) and error.__cause__ is not None:", "    if False:",
     "tests/test_plugins.py -k traceback_comes"),
    ("a finished chunk encoded again", "framestyle/engine/runner/unit.py",
     "            if parts and not spec.is_complete(target):", "            if parts:",
     "tests/test_segments.py -k join_that_failed"),
    ("the chunks joined without the sound", "framestyle/builtin/video.py",
     "    join_videos(fmt, chunks, partial, info.path if audio else None, audio, info.window)",
     "    join_videos(fmt, chunks, partial, None, None)",
     "tests/test_segments.py -k chunks_and_joined"),
    ("temporal loss never built", "framestyle/builtin/losses.py",
     "    if not job.warm:\n        return None\n    return TemporalLoss",
     "    if True:\n        return None\n    return TemporalLoss",
     "tests/test_video.py::test_warm_start_and_temporal_loss_each_lower_the_warp_error"),
    ("SIGTERM not handled", "framestyle/cli.py",
     "        signal.signal(signal.SIGTERM, handler)", "        pass",
     "tests/test_cli.py::test_sigterm_stops_cleanly_keeping_finished_outputs"),
    ("resume never reuses frames", "framestyle/engine/frame_store.py",
     "        if previous_fingerprint(marker) != fingerprint or not reuse:", "        if True:",
     "tests/test_interrupt.py -k fixed_points"),
    ("on_run_end never called", "framestyle/engine/driver.py",
     "        self.hooks.on_run_end(summary)", "        pass",
     "tests/test_hook_order.py"),
    ("meta: on_run_end never called", "framestyle/engine/driver.py",
     "        self.hooks.on_run_end(summary)", "        pass",
     "tests/test_hook_order.py -k every_hook"),
    ("meta: no test implements on_run_end", "tests/test_plugins.py",
     "        def on_run_end(self, event):", "        def on_run_ended(self, event):",
     "tests/test_hook_order.py -k every_hook"),
    ("--scales ignored", "framestyle/transfer/frame.py",
     "        if job.settings.scales > 1 and not job.warm and budget > 0:", "        if False:",
     "tests/test_speed.py -k coarse_to_fine"),
    ("FFmpeg's decoder noise let through", "framestyle/media/video.py",
     '        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")', "        pass",
     "tests/test_bad_inputs.py::test_damaged_videos_keep_what_can_be_read"),
    ("a tensor kept per frame", "framestyle/transfer/optimize.py",
     "        return StylizeResult(self.best.image, self.done, self.best.loss, self.best.losses)",
     "        globals().setdefault('KEPT', []).append(self.best.image.clone())\n"
     "        return StylizeResult(self.best.image, self.done, self.best.loss, self.best.losses)",
     "tests/test_memory.py"),
    ("an autograd graph kept per pass", "framestyle/transfer/optimize.py",
     "    if total.requires_grad:\n        total.backward()\n",
     "    if total.requires_grad:\n        total.backward(retain_graph=True)\n"
     "        globals().setdefault('KEPT', []).append(total.grad_fn)\n",
     "tests/test_memory.py"),
    ("CPU pass layout follows the frames in flight", "framestyle/engine/runner/scheduler.py",
     "                          lanes=min(self.lanes, self.capacity))",
     "                              lanes=None)",
     "tests/test_executors.py -k own"),
    ("source change not seen", "framestyle/engine/frame_store.py",
     "str(info.path.resolve()), *source_identity(info.path),", "str(info.path.resolve()),",
     "tests/test_video.py -k reused_only"),
    ("requires-python says 3.10", "pyproject.toml",
     'requires-python = ">=3.11"', 'requires-python = ">=3.10"',
     "tests/test_packaging.py"),
    ("damaged frames dropped, not repeated", "framestyle/media/video.py",
     "                for _ in missing:\n", "                for _ in missing[:0]:\n",
     "tests/test_bad_inputs.py -k sound"),
    ("nominal rate for VFR", "framestyle/media/video.py",
     "        count, fps = average_timing(count, fps, path)\n", "",
     "tests/test_video.py -k odd_sized"),
    ("segments' seams not cross-faded", "framestyle/engine/runner/unit.py",
     "    return splitting.cross_fade(store.kept(index, \"tail\"), store.kept(index, \"head\"),",
     "    return splitting.cross_fade(store.kept(index, \"tail\"), store.kept(index, \"tail\"),",
     "tests/test_segments.py -k jump"),
    ("the assembly ignores where a segment found the video's end", "framestyle/engine/runner/unit.py",
     "ended = int(store.recall(VIDEO_END_NOTE) or planned)", "ended = planned",
     "tests/test_segments.py -k fewer_frames"),
    ("a scene cut does not restart a segment's chain", "framestyle/engine/runner/chain.py",
     "and not motion.cut and settings.warm_start", "and settings.warm_start",
     "tests/test_segments.py -k overlap_costs"),
    ("an overflowing loss's retry writes the content as it started", "framestyle/transfer/frame.py",
     "        self.task = self.start_level(self.level, self.image, self.done, safe=True)\n",
     "        self.final = StylizeResult(crop(self.image, self.margin), self.done, 0.0, {}, self.tiles)\n"
     "        self.level = len(self.plan)\n",
     "tests/test_faults.py -k overflowing"),
    ("a unit alone lays its passes out by itself", "framestyle/engine/runner/unit.py",
     "context.spec.capacity, context.spec.lanes)", "context.spec.capacity, 1)",
     "tests/test_executors.py -k own"),
    ("first-iterations 0 means iterations", "framestyle/settings/__init__.py",
     "        if video and not warm and self.first_iterations is not None:",
     "        if video and not warm and self.first_iterations:",
     "tests/test_video.py -k scene_cut"),
    ("tiles carry a quarter of the halo they need", "framestyle/transfer/tiles.py",
     "        return cls(round_up(side, align), round_up(needed if halo is None else halo, align), align)",
     "        return cls(round_up(side, align), round_up((needed if halo is None else halo) // 4, align), align)",
     "tests/test_tiles.py -k batch_with"),
    ("a tile's gradient left out", "framestyle/transfer/tiles.py",
     "    for tile in tiles:\n        crop = tile.of(pixels).clone()",
     "    for tile in tiles[1:]:\n        crop = tile.of(pixels).clone()",
     "tests/test_tiles.py -k gradient_equals"),
    ("halo of the first convolution only", "framestyle/transfer/tiles.py",
     "needed = receptive_radius(deepest) if deepest else 1", "needed = 1",
     "tests/test_tiles.py -k gradient_equals"),
    ("a tile's Gram normalised by its own positions", "framestyle/transfer/losses.py",
     "gram_sum(tile.owned(features[name], name)) for name", "gram(tile.owned(features[name], name)) for name",
     "tests/test_tiles.py -k gradient_equals"),
    ("no margin around the canvas", "framestyle/transfer/frame.py",
     "        self.margin = fitting_margin(warm_margin(job.settings.margin) if job.warm else job.settings.margin,",
     "        self.margin = fitting_margin(0,", "tests/test_borders.py -k edges"),
    ("a loss that cannot be tiled tiled anyway", "framestyle/transfer/frame.py",
     "    if plan.tiling is not None and untileable:", "    if False:",
     "tests/test_tiles.py -k cannot_be_tiled"),
    ("Winograd's backward with the filters unflipped", "framestyle/transfer/winograd.py",
     "weight.flip(2, 3).transpose(0, 1) if backward", "weight.transpose(0, 1) if backward",
     "tests/test_winograd.py -k gradients"),
    ("pass threads left with the caller's thread count", "framestyle/transfer/optimize.py",
     "    torch.set_num_threads(threads)\n    run_pass(group, encode)", "    run_pass(group, encode)",
     "tests/test_executors.py -k share_of_the_threads"),
    ("Winograd never used", "framestyle/engine/runtime.py",
     "            use_winograd(self.encoder)", "            pass",
     "tests/test_winograd.py -k ends_where"),
    ("tiles not recorded", "framestyle/engine/runner/chain.py",
     "        done.tiles = result.tiles", "        done.tiles = 0",
     "tests/test_tiles.py -k batch"),
    ("Winograd zero-pads a reflect or replicate convolution", "framestyle/transfer/winograd.py",
     '        if self.conv.padding_mode != "zeros":', "        if False:",
     "tests/test_winograd.py -k direct_convolutions"),
    ("lag judged the wrong way round", "framestyle/engine/runner/chain.py",
     "(ours - self.previous_features).square().sum() < (ours - features)",
     "(ours - self.previous_features).square().sum() > (ours - features)",
     "tests/test_video.py -k flags_frames"),
    ("warm start from the change without the change", "framestyle/transfer/warm.py",
     "            warped = (job.content + moved).clamp(0, 1)", "            warped = job.content.clone()",
     "tests/test_motion.py -k change"),
    ("warm start from the change carries the previous content", "framestyle/transfer/warm.py",
     "            warped = (job.content + moved).clamp(0, 1)",
     "            warped = to_tensor(warp(job.previous_rgb, job.motion.flow, cubic=True), device)",
     "tests/test_motion.py -k change"),
    ("a sequence in its names' order", "framestyle/media/sequence.py",
     "    return sorted(found)", "    return sorted(found, key=lambda found: found[1].name)",
     "tests/test_sequences.py -k numbers_order"),
    ("a sequence's gaps dropped, not filled", "framestyle/media/sequence.py",
     "                yield from ((index - len(missing) + at, previous) for at in range(len(missing)))",
     "                pass",
     "tests/test_sequences.py -k keep_their_place"),
    ("a sequence at the video default rate, not --fps", "framestyle/engine/formats.py",
     "source.info = dataclasses.replace(source.info, fps=settings.fps)", "pass",
     "tests/test_sequences.py -k asked_rate"),
    ("a part of a video with the whole file's sound", "framestyle/media/encodings.py",
     'part = ["-ss", f"{window[0]:.6f}", "-t", f"{window[1]:.6f}"] if window is not None else []', "part = []",
     "tests/test_frame_range.py -k frame_numbers"),
    ("the histogram loss matches the image to itself", "framestyle/transfer/losses.py",
     "        return torch.empty_like(values).scatter_(1, order, ranked)", "        return values",
     "tests/test_artist.py -k histogram_loss"),
    ("a style change at a cut fades", "framestyle/engine/schedule.py",
     "fade = 0 if index == 0 or starts_shot(index) else settings.style_fade",
     "fade = settings.style_fade", "tests/test_schedule.py -k instant"),
    ("a frame's scheduled styles ignored", "framestyle/engine/runner/chain.py",
     "style_weights=self.item.styles.weights_at(frame.index) if self.item.styles else None", "style_weights=None",
     "tests/test_schedule.py -k instant"),
    ("a changed schedule restyles every frame", "framestyle/engine/frame_store.py",
     "first = first_changed(styles, StyleTimeline.from_json(self.recall(STYLES_NOTE)), frames)", "first = 0",
     "tests/test_schedule.py -k touches"),
    ("a split video's assembly forgets the schedule", "framestyle/engine/runner/unit.py",
     "store.resume(unit.fingerprint, True, unit.item.styles)", "store.resume(unit.fingerprint, True)",
     "tests/test_schedule.py -k split"),
    ("--color-only ignored", "framestyle/engine/runtime.py",
     "            image = keep_luminance(content, image)", "            pass",
     "tests/test_artist.py -k color_only_keeps"),
    ("--flow ignored: always DIS", "framestyle/engine/runner/context.py",
     "return estimate_motion(previous, current, self.hooks.flows().get(self.settings.flow).estimate)",
     "return estimate_motion(previous, current)", "tests/test_motion.py -k flow_a_plugin"),
    ("--end's frame left out", "framestyle/media/window.py",
     'return int(match["frame"]) if end else int(match["frame"]) - 1', 'return int(match["frame"]) - 1',
     "tests/test_frame_range.py -k frame_numbers"),
    ("a studio format's alpha not laid back on", "framestyle/builtin/video.py",
     "        alpha = alpha_input(self.info) if video and self.fmt.alpha_pixels else None",
     "        alpha = None", "tests/test_formats.py -k frame_by_frame"),
    ("a chunk's alpha read from the start of the video", "framestyle/engine/runner/unit.py",
     "                part = chunk_info(unit.info, unit.first, unit.end)", "                part = unit.info",
     "tests/test_formats.py -k split_prores"),
    ("the alpha through alphamerge's 8 bits", "framestyle/media/encodings.py",
     "[v][a]mergeplanes={planes}:format={pixels}[out]", "[v][a]alphamerge,format={pixels}[out]",
     "tests/test_formats.py -k frame_by_frame"),
    ("--crf never reaches the encoder", "framestyle/media/encodings.py",
     '        return ["-crf", str(self.crf[0] if crf is None else crf)]', '        return ["-crf", str(self.crf[0])]',
     "tests/test_formats.py -k hevc_with_crf"),
    ("a format the bundled ffmpeg lacks found out after the work", "framestyle/builtin/video.py",
     "        return fmt.crf_problem(settings.crf) or encoder_problem(fmt)",
     "        return fmt.crf_problem(settings.crf)",
     "tests/test_formats.py -k refused"),
    ("a kept 16-bit frame read back at 8 bits", "framestyle/engine/frame_store.py",
     "        return read_frame(self.path(index, part))",
     "        from framestyle.media.images import read_image\n        return read_image(self.path(index, part))",
     "tests/test_formats.py -k numbered_as_its_source"),
    ("--bit-depth 16 quantised to 8 bits", "framestyle/engine/runtime.py",
     "to_rgb16(image) if self.settings.bit_depth == 16 else to_rgb8(image)", "to_rgb8(image)",
     "tests/test_formats.py -k numbered_as_its_source"),
    ("a sequence written from 1 whatever its source's numbers", "framestyle/builtin/video.py",
     "    return files[0][0] + skipped", "    return 1", "tests/test_formats.py -k numbered_as_its_source"),
    ("an earlier, longer run's frames left in a sequence", "framestyle/builtin/video.py",
     "            if not self.first <= number < self.first + self.count:", "            if False:",
     "tests/test_formats.py -k numbered_as_its_source"),
    ("numbered outputs written over files framestyle did not make", "framestyle/builtin/video.py",
     "        if not ours and target.parent.is_dir() and numbered_files(target):", "        if False:",
     "tests/test_formats.py -k did_not_make"),
    ("a region's Gram taken over the whole picture", "framestyle/transfer/losses.py",
     "        sums = {(region, name): gram_sum(features[name].float() * self.whole_mask(region, size, name).sqrt())",
     "        sums = {(region, name): gram_sum(features[name].float()) * self.whole_mask(region, size, name).mean()",
     "tests/test_regions.py -k own_style"),
    ("--region-rest content styles the rest anyway", "framestyle/builtin/losses.py",
     '    if job.settings.region_rest == "style":', "    if True:", "tests/test_regions.py -k stay_the_content"),
    ("the rest takes --style over the regions too", "framestyle/builtin/losses.py",
     "    return np.clip(1.0 - np.sum(masks, axis=0), 0.0, 1.0).astype(np.float32)",
     "    return np.ones_like(masks[0])", "tests/test_regions.py -k no_mask_covers"),
    ("every frame takes the first frame's masks", "framestyle/engine/runner/chain.py",
     "                 else mask.at(frame.index) for n, mask in enumerate(self.context.runtime.masks)]",
     "                 else mask.at(0) for n, mask in enumerate(self.context.runtime.masks)]",
     "tests/test_regions.py -k folder_of_masks"),
    ("--region-follow is not heard", "framestyle/engine/runner/chain.py",
     '        follow = context.settings.region_follow and info.kind == "video"', "        follow = False",
     "tests/test_regions.py -k however_the_video_is_split"),
    ("a followed mask stands still", "framestyle/engine/regions.py",
     "            there = grid + motion.flow  # each pixel's place in the frame before",
     "            there = grid + 0 * motion.flow", "tests/test_regions.py -k moves_with"),
    ("a segment's followed mask starts where it was drawn", "framestyle/engine/regions.py",
     "                self.replay(index, width, height)", "                self.carry(width, height, motion)",
     "tests/test_regions.py -k moves_with"),
    ("a followed mask goes on moving after a cut", "framestyle/engine/regions.py",
     "        elif motion is not None and self.cut_at is None:", "        elif motion is not None:",
     "tests/test_regions.py -k after_a_cut"),
    ("a tile's share of a guided Gram weighs its activations by the mask squared", "framestyle/transfer/losses.py",
     "                                             * tile.same(self.whole_mask(region, tile.size, name), name).sqrt())",
     "                                             * tile.same(self.whole_mask(region, tile.size, name), name))",
     "tests/test_tiles.py -k gradient_equals"),
]


ASSERTION_FAILURES = ("AssertionError", "assert ", "Failed: ")  # pytest's failure messages that are verdicts


def run_tests(test: str) -> tuple[int, list[str], str]:
    """Run the named tests: pytest's exit status, the messages of the tests
    that failed (their errors in fixtures and collection left out), and the
    summary line."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 f"--junitxml={report}", *test.split()], cwd=ROOT,
                                capture_output=True, text=True)
        messages = []
        if report.exists():
            for case in ElementTree.parse(report).iter("testcase"):
                messages += [failure.get("message", "") for failure in case.findall("failure")]
    lines = result.stdout.strip().splitlines()
    return result.returncode, messages, lines[-1] if lines else result.stderr[-200:]


def chosen(words: list[str], sample: int | None) -> list[tuple[str, str, str, str, str]]:
    if sample is None:
        return [b for b in BREAKS if not words or any(word.lower() in b[0].lower() for word in words)]
    changed = subprocess.run(["git", "diff", "--name-only", "HEAD~1"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    touched = [b for b in BREAKS if b[1] in changed]
    others = [b for b in BREAKS if b not in touched]
    return rotated(touched, sample) + rotated(others, sample)  # at most 2 x sample: CI's time is bounded


def rotated(breaks: list[tuple[str, str, str, str, str]], count: int) -> list[tuple[str, str, str, str, str]]:
    """``count`` of ``breaks``, a different run of them each day."""
    start = date.today().toordinal() * count % max(1, len(breaks))
    return (breaks[start:] + breaks[:start])[:count]


def main(words: list[str], sample: int | None = None, proved_clean: bool = False) -> int:
    """``proved_clean``: the whole suite has just passed on this very tree
    (``dev.py test`` says so), which is each break's clean run already."""
    unnoticed: list[str] = []
    clean: dict[str, tuple[int, list[str], str]] = {}
    for name, file, old, new, test in chosen(words, sample):
        path = ROOT / file
        original = path.read_text()
        if original.count(old) != 1:
            print(f"## {name}: the text to break is not in {file} exactly once; update this list")
            unnoticed.append(name)
            continue
        if test not in clean:
            clean[test] = (0, [], "passed in the whole suite") if proved_clean else run_tests(test)
        if clean[test][0] != 0:
            print(f"## {name}: {test}\n   FAILS ON THE CLEAN CODE: {clean[test][2]}")
            unnoticed.append(name)
            continue
        try:
            path.write_text(original.replace(old, new))
            code, messages, last = run_tests(test)
        finally:
            path.write_text(original)
        verdicts = [message for message in messages if message.startswith(ASSERTION_FAILURES)]
        caught = code in (1, 2) and bool(verdicts)
        why = "caught" if caught else "NOT CAUGHT" if not messages else "NOT CAUGHT BY AN ASSERTION"
        print(f"## {name}: {test}\n   {why}: {last}")
        for message in (verdicts or messages)[:1]:
            print("    ", message.splitlines()[0][:200] if message else "")
        if not caught:
            unnoticed.append(name)
    if unnoticed:
        print(f"not caught: {', '.join(unnoticed)}")
    return 1 if unnoticed else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    proved = "--proved-clean" in arguments
    arguments = [argument for argument in arguments if argument != "--proved-clean"]
    size = None
    if "--sample" in arguments:
        at = arguments.index("--sample")
        size = int(arguments[at + 1])
        del arguments[at:at + 2]
    sys.exit(main(arguments, size, proved))
