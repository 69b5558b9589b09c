"""A worker process of the subprocess executor: ``python -m framestyle.engine.executors.child``
reads a pickled (RunSpec, unit) from stdin, runs the unit and writes each
event to stdout, pickled, as it comes. Anything else printed goes to stderr."""

from __future__ import annotations

import os
import pickle
import sys


def main() -> int:
    events = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # a plugin's print must not break the stream of events

    from framestyle.engine.executors import Fatal
    from framestyle.engine.runner.context import UnitContext
    from framestyle.engine.runner.unit import run_unit
    from framestyle.errors import PluginError, UsageError
    from framestyle.log import setup_logging

    spec, unit = pickle.load(sys.stdin.buffer)
    setup_logging(spec.settings.verbosity)

    def emit(event: object) -> None:
        pickle.dump(event, events)
        events.flush()

    try:
        run_unit(unit, UnitContext.build(spec), emit)
    except (UsageError, PluginError) as error:
        emit(Fatal(error))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
