"""The run: plan it into units, run the units, turn their events into hooks.

``driver.py`` runs it top down. ``planning/`` finds the inputs and splits
them into units (``units.py``); an executor (``executors/``: ``local``,
``subprocess``, ``ray/``) runs each unit with the unit runner
(``runner/``), in this process or another; the units' events come back to
the driver, which announces them as the observer hooks. Shared below them:
the run's per-process state (``runtime.py``, ``device.py``, ``styles.py``),
which loader and writer a path gets (``formats.py``) and the finished frames
kept for resume and segments (``frame_store.py``).

The nouns, one meaning each:

* **input**: a file the run stylises; an **item** is an input numbered in
  the run with its output path (:class:`~framestyle.engine.units.Item`).
* **unit**: what an executor runs: a group of same-size images, a whole
  video, a video's segment or its assembly (:mod:`~framestyle.engine.units`).
* **segment**: a contiguous part of a video with a warm-start chain of its
  own; the **assembly** cross-fades the overlaps and writes the video.
* **stream**: an input's (or a segment's) frames in order, as the scheduler
  takes them (:mod:`~framestyle.engine.runner.streams`).
* **chain**: consecutive frames of one shot, each starting warm from the
  last one's result (:mod:`~framestyle.engine.runner.chain`).
* **frame**: one picture of an input (an image has one); a **decoded frame**
  is one read, resized and with its motion; a frame **in flight** is being
  optimised; a **kept** frame is finished and on disk (the frame store).
* **job**: what plugins get about a frame (:class:`~framestyle.types.FrameJob`);
  its **work** is its optimisation (:class:`~framestyle.transfer.frame.FrameWork`),
  one **task** per size (:class:`~framestyle.transfer.optimize.Task`).
* **batch**: the frames in flight together (``--batch-size``, the capacity);
  a **pass** is one VGG-19 forward and backward over stacked images; an
  **iteration** (a step) is one optimizer update of every frame in flight.
* **event**: what a unit reports (:class:`~framestyle.engine.units.Event`);
  the driver turns it into an observer hook (``on_frame_end`` …).
"""
