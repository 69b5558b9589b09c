"""The unit runner: one unit in one process, the same on every executor
(:mod:`.unit`): its inputs as streams of frames (:mod:`.streams`, :mod:`.chain`),
decoded ahead (:mod:`.read_ahead`), optimised together (:mod:`.scheduler`)."""
