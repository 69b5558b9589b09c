"""What a run leaves beside its outputs, from its events: each video's JSON
report, the manifest and the resolved settings (``framestyle-run.json``,
``framestyle-run.toml``), and with ``--report`` the HTML report. An
observer like any other plugin: it sees only what the hooks say."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from framestyle.events import FrameEnd, RunEnd, RunStart, SourceEnd, SourceStart
from framestyle.hookspecs import hookimpl
from framestyle.records.manifest import ItemRecord, Journal, write_records
from framestyle.records.video import FrameLog

log = logging.getLogger("framestyle")


class Records:
    """One per plugin host; it follows one run at a time."""

    def __init__(self) -> None:
        self.run: RunStart | None = None
        self.logs: dict[Path, FrameLog] = {}  # by input, while it runs
        self.items: dict[int, ItemRecord] = {}  # by number in the run
        self.journal: Journal | None = None

    @hookimpl
    def on_run_start(self, event: RunStart) -> None:
        self.run, self.logs, self.items = event, {}, {}
        output = event.settings.output
        self.journal = Journal(Path(output), event.to_file) if output is not None else None

    @hookimpl
    def on_source_start(self, event: SourceStart) -> None:
        if self.run is not None and event.info is not None:
            self.logs[event.path] = FrameLog(event.info, event.output, self.run.settings, self.run.device,
                                             self.run.weights)

    @hookimpl
    def on_frame_end(self, event: FrameEnd) -> None:
        if event.path in self.logs:
            self.logs[event.path].add(event)

    @hookimpl
    def on_source_end(self, event: SourceEnd) -> None:
        frames = self.logs.pop(event.path, None)
        loss = None
        if event.status == "done" and frames is not None:
            try:
                frames.finish()  # a video's report beside it
            except OSError as exc:
                log.warning("%s: could not write its report: %s", event.output, exc)
            last = max(frames.frames, key=lambda frame: frame.index, default=None)
            loss = last.loss if last is not None and math.isfinite(last.loss) else None
        kind = event.kind or (frames.info.kind if frames is not None else "")
        tiles = max((frame.tiles for frame in frames.frames), default=0) if frames is not None else 0
        record = ItemRecord(str(event.path), str(event.output), kind, event.status, event.frames, event.iterations,
                            round(event.seconds, 3), loss, event.message, tiles, event.made_with)
        self.items[event.item] = record
        if self.journal is not None and event.status != "skipped":  # a skipped input's record is the earlier one
            try:
                self.journal.add(record)
            except OSError as exc:
                log.warning("%s: could not journal its record: %s", event.output, exc)
                self.journal = None

    @hookimpl(tryfirst=True)  # before the summary is printed
    def on_run_end(self, event: RunEnd) -> None:
        """The manifest and settings beside the outputs, and the HTML report
        with --report. Losing them must not fail the run."""
        run, records = self.run, [self.items[number] for number in sorted(self.items)]
        if self.journal is not None:
            self.journal.close()
        self.run, self.logs, self.items, self.journal = None, {}, {}, None
        if run is None or run.settings.output is None:
            return
        try:
            manifest = write_records(run.settings, Path(run.settings.output), run.to_file, records)
            if manifest is not None and run.settings.report and not event.interrupted:
                from framestyle.records.html import write_report

                log.info("report: %s", write_report(manifest))
        except Exception as exc:  # the outputs are what matter; their records are secondary
            log.debug("traceback", exc_info=True)
            log.warning("could not write the run's records beside the outputs: %s", exc)
