"""What a Ray worker (:mod:`framestyle.engine.executors.ray.actor`) sends the driver, and
how often: light enough to import where no torch is (the scale benchmark's
stand-in workers send the same)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from framestyle.events import FrameEnd, Step

# Seconds between a worker's messages while a unit runs: each carries
# every frame-level event since the last and only the newest step of each
# frame in flight, so a thousand workers cost the driver a few messages a
# second each, not one per optimiser step (the steps' detail is in the
# per-frame records).
TICK = 1.0


@dataclass(frozen=True)
class Where:
    """Where a worker runs: for logs (``-v``), records and retries."""

    node: str  # the cluster's node id
    address: str  # the node's IP address
    host: str
    pid: int

    def __str__(self) -> str:
        return f"{self.host} ({self.address}) pid {self.pid}"


class Ended:
    """The last message of a unit's run."""


class Batch:
    """The events of a worker's next message: every event in order, but a
    frame's steps only the newest, and none once the frame has ended."""

    def __init__(self, tick: float | None = None) -> None:
        self.tick = TICK if tick is None else tick
        self.events: list[object] = []
        self.steps: dict[tuple[int, int], int] = {}  # (input, frame) -> its step's place in events
        self.sent = time.monotonic()

    def add(self, message: object) -> None:
        payload = getattr(message, "payload", None)
        if isinstance(payload, Step | FrameEnd):
            key = (message.item, payload.frame if isinstance(payload, Step) else payload.index)  # type: ignore[attr-defined]
            place = self.steps.pop(key, None)
            if place is not None:
                self.events[place] = None
            if isinstance(payload, Step):
                self.steps[key] = len(self.events)
        self.events.append(message)

    def due(self) -> float | None:
        """Seconds until the next message is due (0: now; None: nothing to send)."""
        return max(0.0, self.sent + self.tick - time.monotonic()) if self.events else None

    def take(self) -> list[object]:
        events = [event for event in self.events if event is not None]
        self.events, self.steps, self.sent = [], {}, time.monotonic()
        return events


def node_of_this_process() -> tuple[str, str]:
    """The Ray node id and IP address of this process ("", "" outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
    except Exception:
        return "", ""
