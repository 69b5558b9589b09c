"""How the command line reads an option's value: argparse ``type=``
functions, each turning a bad value into argparse's one-line error."""

from __future__ import annotations

import argparse

from framestyle.settings import COLOR_MODES, PRECISIONS, parse_layer_weights, parse_memory, parse_tile


def layer_weights(text: str) -> dict[str, float]:
    """``--style-layers``: see :func:`framestyle.settings.parse_layer_weights`."""
    try:
        return parse_layer_weights(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def loss_weight(text: str) -> tuple[str, float]:
    name, sep, weight = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=WEIGHT, e.g. tv=0.01") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def non_negative_int(text: str) -> int:
    return positive_int(text) if text.strip() != "0" else 0


def batch_size(text: str) -> int:
    """``auto`` (0) or a positive number."""
    return 0 if text.strip().lower() == "auto" else positive_int(text)


def tile(text: str) -> str:
    try:
        return parse_tile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--tile {text.strip().lower()}: ")) from None


def memory(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def number_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use numbers separated by commas, e.g. 0.7,0.3") from None


def color_mode(text: str) -> str | None:
    if text == "none":
        return None
    if text not in COLOR_MODES:
        raise argparse.ArgumentTypeError(f"{text!r}: choose luminance, histogram or none")
    return text


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use whole numbers separated by commas") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each must be at least 1")
    return values


def precision_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",")]
    bad = [v for v in values if v not in PRECISIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"{', '.join(bad)}: choose {', '.join(PRECISIONS)}")
    return values
