"""Hook wrappers entered by hand, for a hook whose result is computed
elsewhere: the built-in optimisation of a batch of frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pluggy

from framestyle.errors import FramestyleError, InputError, PluginError


class HookFailure(InputError):
    """A plugin raised inside a hook while an input was processed."""

    @classmethod
    def of(cls, plugin: str, hook_name: str, exc: Exception) -> HookFailure:
        return cls(f"plugin {plugin!r} failed in {hook_name}: {type(exc).__name__}: {exc}")


class WrapperCalls:
    """Wrappers of a first-result hook entered by hand, outermost first, so
    that the result they wrap can be computed elsewhere (a batch of frames)
    and handed to them later, as pluggy would have."""

    def __init__(self, hook_name: str, impls: Sequence[Any], kwargs: dict[str, Any]) -> None:
        self.hook_name = hook_name
        self.entered: list[tuple[Any, Any]] = []
        for impl in impls:
            generator = self._guard(impl, impl.function, *(kwargs[name] for name in impl.argnames))
            self._guard(impl, next, generator)
            self.entered.append((impl, generator))

    def finish(self, result: Any) -> Any:
        """Each wrapper's code after ``yield``, innermost first; what they return."""
        for impl, generator in reversed(self.entered):
            outcome = pluggy.Result(result, None) if impl.hookwrapper else None
            try:
                self._guard(impl, generator.send, outcome if outcome is not None else result)
                raise PluginError(f"plugin {impl.plugin_name!r}: its {self.hook_name} wrapper yields more than once")
            except StopIteration as stop:
                result = outcome.get_result() if outcome is not None else stop.value
        self.entered = []
        return result

    def _guard(self, impl: Any, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except (FramestyleError, KeyboardInterrupt, StopIteration):
            raise
        except Exception as exc:
            raise HookFailure.of(impl.plugin_name, self.hook_name, exc) from exc
