"""The ``framestyle`` command. Heavy modules (torch, OpenCV) load only when a
command needs them, so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from framestyle import __version__
from framestyle.errors import FramestyleError, UsageError
from framestyle.log import setup_logging
from framestyle.settings import (
    Settings,
)
from framestyle.settings.options import build_parser

log = logging.getLogger("framestyle")

def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings typed on the command line: every option is named like
    its field, and options not typed are absent."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if hasattr(args, f.name)}
    values.update(inputs=list(args.inputs), verbosity=-1 if args.quiet else args.verbose)
    if "style" in values:
        values["style"] = list(values["style"])
    if "losses" in values:
        values["losses"] = dict(values["losses"])
    return values


def settings_from(args: argparse.Namespace) -> Settings:
    """Defaults, then the preset, then the config file, then the command line."""
    from framestyle.settings.files import resolve

    settings, config_file = resolve(given_settings(args), getattr(args, "config", None),
                                    getattr(args, "preset", None))
    if config_file is not None:
        log.info("settings from %s (the command line overrides them)", config_file)
    return settings


def command_run(args: argparse.Namespace) -> int:
    from framestyle.engine.driver import run
    from framestyle.host import PluginHost

    return run(settings_from(args), PluginHost(args.plugins)).exit_code


def command_report(args: argparse.Namespace) -> int:
    from framestyle.records.html import write_report
    from framestyle.records.manifest import find_manifest

    manifest = find_manifest(args.output)
    if manifest is None:
        raise UsageError(f"{args.output}: no framestyle run found there (no framestyle-run.json)")
    print(write_report(manifest, args.to))
    return 0


def command_plugins(args: argparse.Namespace) -> int:
    from framestyle.host import PluginHost

    host = PluginHost(args.plugins)
    records = host.describe(include_builtin=args.all)
    if args.json:
        json.dump([r.to_json() for r in records], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not records:
        print("no third-party plugins installed (--all lists the built-in ones)")
    for record in records:
        origin = f"{record.distribution} {record.version}" if record.distribution else record.module
        state = " [blocked]" if record.blocked else f" [failed: {record.error}]" if record.error else ""
        print(f"{record.name} ({record.kind}, {origin}){state}")
        if record.hooks:
            print(f"  hooks: {', '.join(record.hooks)}")
        losses = host.hooks.losses()
        for kind, names in record.registers.items():
            if kind == "losses":  # with the weight each takes unless told otherwise
                names = [f"{name} (default weight {losses.get(name).default_weight:g})" for name in names]
            print(f"  {kind}: {', '.join(names)}")
    return 0


def print_version() -> int:
    import cv2
    import torch

    from framestyle.engine.device import resolve_device
    from framestyle.host import PluginHost

    host = PluginHost()
    print(f"framestyle {__version__}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, OpenCV {cv2.__version__}")
    print(f"device: {resolve_device('auto')}")
    print(f"weights: {weights_line()}")
    names = [f"{r.name}{'' if r.kind == 'builtin' else f' ({r.distribution} {r.version})'}"
             for r in host.records if not r.error and not r.blocked]
    print(f"plugins: {', '.join(names)}")
    return 0


def weights_line() -> str:
    """Which VGG-19 weights a run would use (converted once, if need be), or
    why none: what a user checks before going offline."""
    from framestyle.errors import WeightsNotFoundError
    from framestyle.transfer.weights import resolve_weights

    try:
        weights = resolve_weights()
    except WeightsNotFoundError as error:
        return "none found: " + str(error).splitlines()[0]
    return f"{weights.source}, sha256 {weights.digest[:16]}"


def interrupt_on_sigterm() -> None:
    """Treat SIGTERM (a scheduler stopping the job, ``kill``) like Ctrl-C, so
    writers are closed and finished outputs kept the same way."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. main() called from a worker)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    setup_logging(verbosity)
    try:
        if args.version:
            return print_version()
        if args.command == "run":
            interrupt_on_sigterm()
            return command_run(args)
        if args.command == "plugins":
            return command_plugins(args)
        if args.command == "report":
            return command_report(args)
        if args.command == "bench" and args.bench_command == "scale":
            from framestyle.scale.bench import main as scale

            return scale(args)
        if args.command == "bench":
            from framestyle.bench import main as bench

            return bench(args)
        parser.print_help(sys.stderr)
        return 2
    except FramestyleError as exc:
        log.error("%s", exc, exc_info=verbosity > 0)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
