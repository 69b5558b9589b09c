"""Joining a Ray cluster for the ``ray`` executor
(:mod:`framestyle.engine.executors.ray.executor`), and how many workers it holds."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from framestyle.errors import UsageError

log = logging.getLogger("framestyle")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError('--executor ray needs Ray, which is not installed: pip install "framestyle[ray]"') from None
    return ray


@dataclass(frozen=True)
class Placement:
    """One worker as planned: on which node, with what."""

    node: str
    cpus: int
    gpus: int


def worker_layout(nodes: Sequence[dict[str, Any]], cores_per_worker: int) -> list[Placement]:
    """One worker per GPU (with the node's cores shared out), or on a node
    without one, one per ``cores_per_worker`` cores (at least one)."""
    layout = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        if gpus:
            layout += [Placement(node["NodeID"], cpus // gpus, 1)] * gpus
        elif cpus:
            count = max(1, cpus // cores_per_worker)
            layout += [Placement(node["NodeID"], cpus // count, 0)] * count
    return layout


def join(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, else the running one (``RAY_ADDRESS``,
    or the one ``ray start`` began on this machine), else start a local one
    of this machine's cores. True when this call joined (the caller shuts
    Ray down at the end); False when this process had joined already."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: nothing reports home
    joined = not ray.is_initialized()
    if joined:
        # Workers' output stays in their log files: stdout carries data only.
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        with sigterm_kept():
            try:
                ray.init(address=address or "auto", **quiet)
            except ConnectionError as error:
                if address:
                    raise UsageError(f"--ray-address {address}: cannot join: {error}") from None
                ray.init(include_dashboard=False, **quiet)
    cluster_messages_to_log(ray)
    return joined


def cluster_messages_to_log(ray: Any) -> None:
    """Ray's driver prints the cluster's error messages (a worker died…) on
    stdout, which carries framestyle's data: they go to the log at -v
    instead, where the run's own one-line warnings say what happened."""
    module: Any = getattr(getattr(ray, "_private", None), "worker", None)  # Ray's internals: checked first
    printer = getattr(module, "print_to_stdstream", None)
    if not callable(printer) or getattr(printer, "framestyle", False):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", []):
            log.debug("ray %s: %s", data.get("pid", ""), line)

    to_log.framestyle = True  # type: ignore[attr-defined]
    module.print_to_stdstream = to_log


@contextmanager
def sigterm_kept() -> Iterator[None]:
    """``ray.init`` replaces the SIGTERM handler; framestyle's (stop as for
    Ctrl-C, keep finished work) comes back after it."""
    try:
        handler = signal.getsignal(signal.SIGTERM)
    except ValueError:
        handler = None
    try:
        yield
    finally:
        if handler is not None:
            with suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGTERM, handler)
