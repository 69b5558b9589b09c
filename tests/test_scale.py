"""The ray executor's driver at scale: a worker's messages are coalesced,
and the real driver, planner and dispatcher complete a folder and a split
video on a simulated cluster (``framestyle bench scale``) with a few
messages per unit, not one per optimiser step."""

from __future__ import annotations

import time
from pathlib import Path

from framestyle.engine.executors import Ledger
from framestyle.engine.executors.ray.messages import Batch
from framestyle.engine.units import AssembleVideo, Event, Item, Outcome, WholeVideo
from framestyle.events import FrameEnd, FrameStart, Step
from framestyle.scale import bench


def step(frame: int, iteration: int) -> Event:
    return Event(1, Step(Path("a.mp4"), frame, iteration, 100, 1.0 / iteration, {}))


def test_a_message_keeps_every_frame_event_and_the_newest_step_of_a_frame_in_flight():
    batch = Batch()
    start = Event(1, FrameStart(Path("a.mp4"), 0, 10, 8, 8, 100))
    end = Event(1, FrameEnd(Path("a.mp4"), 0, 100, 1.0, 1.0, {}))
    for event in [start, step(0, 1), step(0, 2), end, step(1, 1), step(1, 2), step(1, 3)]:
        batch.add(event)
    assert batch.take() == [start, end, step(1, 3)]
    assert batch.events == [] and batch.due() is None  # nothing to send: no wake-up due


def test_a_message_is_due_a_tick_after_the_last():
    batch = Batch(tick=0.2)
    batch.add(step(0, 1))
    assert 0 < batch.due() <= 0.2
    time.sleep(0.25)
    assert batch.due() == 0


def test_the_ledger_releases_a_unit_when_its_last_need_succeeds_and_never_after_a_failure():
    items = [Item(1, 2, Path("a.mp4"), Path("out/a.mp4")), Item(2, 2, Path("b.mp4"), Path("out/b.mp4"))]
    first, second = WholeVideo(items[0]), WholeVideo(items[1])
    after = AssembleVideo(items[0], None, (), "", needs=(first.uid, second.uid))  # type: ignore[arg-type]
    ledger = Ledger([first, second, after])
    assert ledger.note(first.uid, Event(1, Outcome("part"))) == []
    assert ledger.note(second.uid, Event(2, Outcome("done"))) == [after]
    failing = Ledger([first, second, after])
    assert failing.note(first.uid, Event(1, Outcome("failed"))) == []
    assert failing.note(second.uid, Event(2, Outcome("done"))) == []


def measure(tmp_path: Path, workload: str, workers: int, **changes: float) -> dict:
    config = {"workload": workload, "workers": workers, "cache": str(tmp_path), "images": 400,
              "film_hours": 0.01, "wall": 2.0, "image_seconds": 2.0, "frame_seconds": 1.0, **changes}
    return bench.measure(config)


def test_a_folder_on_a_simulated_cluster_is_done_in_a_few_messages_an_image(tmp_path):
    result = measure(tmp_path, "folder", 40)
    assert result["done"] == result["inputs"] == 400
    # Per image: where it runs, then a tick or two with its events: with a
    # message per optimiser step it would be ~300.
    assert result["messages"] <= 4 * 400
    assert result["messages_per_worker_second"] <= 3
    assert 0 < result["utilisation"] <= 1
    assert result["first_dispatch_s"] < result["wall_s"]


def test_a_film_split_over_a_simulated_cluster_is_assembled_once_its_segments_are_done(tmp_path):
    result = measure(tmp_path, "film", 24)
    assert result["done"] == 1
    assert result["units"] == 24 + 2 + 1  # a segment per worker, two chunks (864 frames), the join
    # A tick a second while a segment runs (the clock scaled down with the
    # work), and a message at each start and end.
    assert result["messages_per_worker_second"] <= 1.5


def test_workers_killed_halfway_lose_nothing(tmp_path):
    """A tenth of the workers killed halfway through: their units run again
    elsewhere (a segment from the frames it kept), and every input is done."""
    folder = measure(tmp_path, "folder", 40, kill=0.1)
    assert folder["killed_workers"] == 4 and folder["reruns"] >= 4
    assert folder["done"] == 400 and folder["failed"] == 0
    film = measure(tmp_path, "film", 24, kill=0.1)
    assert film["killed_workers"] == 3 and film["reruns"] >= 3
    assert film["done"] == 1 and film["failed"] == 0
