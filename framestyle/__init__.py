"""framestyle: batch neural style transfer for folders and videos, on pluggy.

Plugin authors need :data:`hookimpl` and the types in :mod:`framestyle.types`;
users of the Python API need :func:`stylize` and :func:`run`. Importing this
package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framestyle.hookspecs import hookimpl
from framestyle.settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "hookimpl", "run", "stylize"]

if TYPE_CHECKING:  # pragma: no cover
    from framestyle.api import run, stylize


def __getattr__(name: str) -> Any:
    # The API pulls in torch; load it on first use, not on import.
    if name in ("run", "stylize"):
        from framestyle import api

        return getattr(api, name)
    raise AttributeError(f"module 'framestyle' has no attribute {name!r}")
