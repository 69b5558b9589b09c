"""``python -m framestyle`` is the ``framestyle`` command."""

import sys

from framestyle.cli import main


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
