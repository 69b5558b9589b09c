"""Log lines on stderr: ``framestyle: …``, ``framestyle: warning: …``,
``framestyle: error: …``. Data goes to stdout; everything else comes here."""

from __future__ import annotations

import logging
import sys

PREFIX = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, so a live progress
    display that redirects stderr keeps log lines above its bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


class Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"framestyle: {PREFIX.get(record.levelno, '')}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(verbosity: int) -> None:
    """-q (verbosity -1): warnings and errors; default: info; -v: debug."""
    logger = logging.getLogger("framestyle")
    for handler in list(logger.handlers):
        if isinstance(handler, StderrHandler):
            logger.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)
    logger.propagate = False
