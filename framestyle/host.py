"""The plugin host: one pluggy manager per run, and the only code that calls hooks.

Built-in plugins are registered by dotted name exactly like third-party ones,
which come from the ``framestyle`` entry-point group. A plugin that fails to
load is skipped with a warning naming it and its distribution, unless
``FRAMESTYLE_STRICT_PLUGINS=1`` makes that fatal.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from framestyle import hookspecs
from framestyle.errors import (
    FramestyleError,
    HookFailure,
    PluginError,
    UsageError,
)
from framestyle.registry import PluginRecord, Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from framestyle.events import FrameEnd, FrameStart, RunEnd, RunStart, SourceEnd, SourceStart, Step
    from framestyle.types import (
        ExecutorSpec,
        FlowSpec,
        FrameJob,
        LoaderSpec,
        LossSpec,
        OptimizerSpec,
        StylizeResult,
        WriterSpec,
    )

log = logging.getLogger("framestyle")

ENTRY_POINT_GROUP = "framestyle"
STRICT_ENV = "FRAMESTYLE_STRICT_PLUGINS"
NO_AUTOLOAD_ENV = "FRAMESTYLE_DISABLE_PLUGIN_AUTOLOAD"
TRACE_ENV = "FRAMESTYLE_TRACE_HOOKS"


# name -> module; registered in this order (hook order among them is set by
# trylast/tryfirst, not by this list).
BUILTIN_PLUGINS: dict[str, str] = {
    "images": "framestyle.builtin.images",
    "video": "framestyle.builtin.video",
    "losses": "framestyle.builtin.losses",
    "optimizers": "framestyle.builtin.optimizers",
    "stylize": "framestyle.builtin.stylize",
    "executors": "framestyle.builtin.executors",
    "progress": "framestyle.builtin.progress:Progress",
    "records": "framestyle.builtin.records:Records",
}


# Built-ins a run cannot do without (as pytest's essential plugins).
UNBLOCKABLE = {
    "stylize": "it is the optimisation itself; a plugin that implements stylize or init_image "
               "takes over from it without blocking it",
}


def load_builtin(where: str) -> object:
    """A built-in plugin: a module, or ``module:Class`` for one that keeps
    state over a run (an instance per host, so two hosts never share it)."""
    module, _, name = where.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, name)() if name else loaded


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


class Hooks:
    """Typed calls into the plugin manager; nothing else calls ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._registries: dict[str, Registry[Any]] = {}

    def refresh(self) -> None:
        """Collect the registries again at next use (a plugin came or went)."""
        self._registries.clear()

    # registration ----------------------------------------------------------

    def _collect(self, hook_name: str, kind: str) -> Registry[Any]:
        if hook_name not in self._registries:
            registry: Registry[Any] = Registry(kind)
            caller = getattr(self._pm.hook, hook_name)
            # Call each implementation on its own so every spec is credited to
            # the plugin that registered it (clash messages, `plugins` listing).
            for impl in caller.get_hookimpls():  # in registration order: built-ins first
                if impl.hookwrapper or impl.wrapper:
                    continue
                owner = impl.plugin_name
                register = lambda spec, o=owner: registry.add(spec, o)  # noqa: E731
                try:
                    impl.function(**({"register": register} if "register" in impl.argnames else {}))
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(f"plugin {owner!r} failed in {hook_name}: {exc}") from exc
            self._registries[hook_name] = registry
        return self._registries[hook_name]

    def loaders(self) -> Registry[LoaderSpec]:
        return self._collect("register_loaders", "loader")

    def writers(self) -> Registry[WriterSpec]:
        return self._collect("register_writers", "writer")

    def losses(self) -> Registry[LossSpec]:
        return self._collect("register_losses", "loss")

    def optimizers(self) -> Registry[OptimizerSpec]:
        return self._collect("register_optimizers", "optimizer")

    def flows(self) -> Registry[FlowSpec]:
        return self._collect("register_flows", "flow")

    def executors(self) -> Registry[ExecutorSpec]:
        return self._collect("register_executors", "executor")

    # calling -----------------------------------------------------------------

    def _call(self, name: str, **kwargs: Any) -> Any:
        """Call hook ``name``; an unexpected exception from a plugin becomes a
        one-line :class:`HookFailure` naming the plugin and the hook, which
        fails the input at hand rather than the run."""
        caller = getattr(self._pm.hook, name)
        try:
            return caller(**kwargs)
        except (FramestyleError, KeyboardInterrupt):
            raise
        except Exception as exc:
            culprit = self._culprit(caller, exc)
            raise HookFailure.of(culprit, name, exc) from exc

    @staticmethod
    def _culprit(caller: Any, exc: BaseException) -> str:
        """The plugin whose implementation the exception passed through last."""
        codes = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()
                 if hasattr(impl.function, "__code__")}
        culprit = "?"
        traceback = exc.__traceback__
        while traceback is not None:
            culprit = codes.get(traceback.tb_frame.f_code, culprit)
            traceback = traceback.tb_next
        return culprit

    # pipeline ----------------------------------------------------------------

    def init_image(self, job: FrameJob) -> torch.Tensor:
        image = self._call("init_image", job=job)
        if image is None:
            raise PluginError("no plugin returned an initial image (is the 'stylize' plugin blocked?)")
        return image

    def stylize(self, job: FrameJob, init: torch.Tensor) -> StylizeResult:
        result = self._call("stylize", job=job, init=init)
        if result is None:
            raise PluginError("no plugin stylized the frame (is the 'stylize' plugin blocked?)")
        return result

    # events --------------------------------------------------------------------

    def on_run_start(self, event: RunStart) -> None:
        self._call("on_run_start", event=event)

    def on_source_start(self, event: SourceStart) -> None:
        self._call("on_source_start", event=event)

    def on_frame_start(self, event: FrameStart) -> None:
        self._call("on_frame_start", event=event)

    def on_step(self, event: Step) -> None:
        self._call("on_step", event=event)

    def on_frame_end(self, event: FrameEnd) -> None:
        self._call("on_frame_end", event=event)

    def on_source_end(self, event: SourceEnd) -> None:
        self._call("on_source_end", event=event)

    def on_run_end(self, event: RunEnd) -> None:
        self._call("on_run_end", event=event)


class PluginHost:
    """A fresh plugin manager with the built-ins, entry points and ``-p`` plugins.

    ``plugins`` are the ``-p`` arguments: ``no:NAME`` blocks a plugin, anything
    else is a module name or a ``.py`` file to load for this run.
    """

    def __init__(
        self,
        plugins: Sequence[str] = (),
        *,
        autoload: bool | None = None,
        strict: bool | None = None,
        builtins: bool = True,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_args, self.autoload = tuple(plugins), autoload  # what another process needs to do the same
        self.registered_here: list[str] = []  # plugin objects given to register(): this process only
        self.pm.add_hookspecs(hookspecs)
        self.strict = env_flag(STRICT_ENV) if strict is None else strict
        self.records: list[PluginRecord] = []
        self.blocked = {p[3:] for p in plugins if p.startswith("no:")}
        for name in self.blocked & UNBLOCKABLE.keys():
            raise UsageError(f"-p no:{name}: the built-in plugin {name!r} cannot be blocked: {UNBLOCKABLE[name]}")
        for name in self.blocked:
            self.pm.set_blocked(name)
        if builtins:
            for name, module in BUILTIN_PLUGINS.items():
                self._add(name, "builtin", functools.partial(load_builtin, module), module)
        if autoload if autoload is not None else not env_flag(NO_AUTOLOAD_ENV):
            self._load_entry_points()
        for spec in plugins:
            if not spec.startswith("no:"):
                self._load_option(spec)
        if env_flag(TRACE_ENV):
            self.pm.trace.root.setwriter(lambda text: sys.stderr.write(f"framestyle: trace: {text}"))
            self.pm.enable_tracing()
        self.hooks = Hooks(self.pm)

    # loading ---------------------------------------------------------------

    def _add(
        self,
        name: str,
        kind: str,
        load: Callable[[], object],
        module: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        record = PluginRecord(name, kind, module, distribution, version)
        self.records.append(record)
        if name in self.blocked:
            record.blocked = True
            return
        origin = f"plugin {name!r}" + (f" from {distribution} {version}" if distribution else "")
        try:
            plugin = load()
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as exc:  # a broken plugin must not take the CLI down
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            record.error = f"{type(exc).__name__}: {exc}"
            if self.strict:
                raise PluginError(f"{origin} failed to load: {record.error}") from exc
            log.warning("%s failed to load and was skipped: %s (set %s=1 to make this fatal)",
                        origin, record.error, STRICT_ENV)

    def _load_entry_points(self) -> None:
        seen: set[str] = set()
        for dist in installed_distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                seen.add(ep.name)
                self._add(ep.name, "entrypoint", ep.load, ep.value,
                          dist.metadata["Name"], dist.version)

    def _load_option(self, spec: str) -> None:
        if spec.endswith(".py"):
            path = Path(spec)
            if not path.is_file():
                raise UsageError(f"-p {spec}: no such file")
            name = path.stem

            def load() -> object:
                module_spec = importlib.util.spec_from_file_location(f"framestyle_plugin_{name}", path)
                assert module_spec and module_spec.loader
                module = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(module)
                return module

            self._add(name, "option", load, str(path))
        else:
            self._add(spec, "option", lambda: importlib.import_module(spec), spec)
        if self.records[-1].error:
            raise PluginError(f"-p {spec}: {self.records[-1].error}")

    # registration for tests and the Python API -------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object for this host (tests, the API)."""
        registered = self.pm.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name!r} is blocked")
        self.registered_here.append(registered)
        self.pm.check_pending()
        self.hooks.refresh()  # the same object: whoever holds it sees the new plugin
        return registered

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        if name in self.registered_here:
            self.registered_here.remove(name)
        self.hooks.refresh()

    # listing -------------------------------------------------------------------

    def describe(self, include_builtin: bool = False) -> list[PluginRecord]:
        """Plugins with the hooks they implement and the names they registered."""
        registries: dict[str, Registry[Any]] = {
            "loaders": self.hooks.loaders(),
            "writers": self.hooks.writers(),
            "losses": self.hooks.losses(),
            "optimizers": self.hooks.optimizers(),
            "flows": self.hooks.flows(),
            "executors": self.hooks.executors(),
        }
        out = []
        for record in self.records:
            if record.kind == "builtin" and not include_builtin:
                continue
            plugin = self.pm.get_plugin(record.name)
            if plugin is not None:
                record.hooks = sorted(
                    caller.name for caller in self.pm.get_hookcallers(plugin) or ()
                )
                record.registers = {
                    kind: [n for n, owner in reg.owners.items() if owner == record.name]
                    for kind, reg in registries.items()
                }
                record.registers = {k: v for k, v in record.registers.items() if v}
            out.append(record)
        return out


def installed_distributions() -> Iterable[importlib.metadata.Distribution]:
    """Installed distributions (a seam for tests to add fake plugins)."""
    return importlib.metadata.distributions()


def iter_hook_names() -> Iterable[str]:
    """Names of every hook in :mod:`framestyle.hookspecs`."""
    for name in dir(hookspecs):
        if hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT}_spec"):
            yield name
