"""Named things that plugins register (loaders, writers, losses, …), and
what the host knows of each plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from framestyle.errors import PluginError, UsageError, did_you_mean


@dataclass
class PluginRecord:
    """What the host knows about one plugin, for ``framestyle plugins``."""

    name: str
    kind: str  # "builtin", "entrypoint" or "option" (-p)
    module: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None  # set when it failed to load
    blocked: bool = False
    hooks: list[str] = field(default_factory=list)
    registers: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


T = TypeVar("T")


class Registry(Generic[T]):
    """Named specs of one kind (loaders, writers, …) with the plugin that gave each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.specs: dict[str, T] = {}
        self.owners: dict[str, str] = {}

    def add(self, spec: T, owner: str) -> None:
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {owner!r} registered a {self.kind} without a name: {spec!r}")
        if name in self.specs:
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {self.owners[name]!r} and {owner!r}; "
                f"block one with -p no:NAME"
            )
        self.specs[name] = spec
        self.owners[name] = owner

    def get(self, name: str) -> T:
        try:
            return self.specs[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.specs)}") from None

    def names(self) -> list[str]:
        return list(self.specs)

    def for_extension(self, suffix: str) -> list[T]:
        """Specs that claim ``suffix`` (".png"), highest priority first."""
        suffix = suffix.lower()
        matching = [s for s in self.specs.values() if suffix in getattr(s, "extensions", ())]
        return sorted(matching, key=lambda s: -getattr(s, "priority", 0))

    def extensions(self) -> set[str]:
        return {ext for s in self.specs.values() for ext in getattr(s, "extensions", ())}

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __len__(self) -> int:
        return len(self.specs)
