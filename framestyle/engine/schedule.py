"""Styles that change over a video: ``--style-at POSITION=STYLE``.

A schedule is a weight per style group, per frame. The run's style groups
are ``--style``'s, then each change's (:func:`schedule_styles`); a frame's
style target is the Gram matrices (or histograms) of the groups blended
with its weights, as ``--style-weights`` blends several styles. So a
cross-fade is weights moving from one change's groups to the next's over
``--style-fade`` frames, and a change at a scene cut is instant: the new
shot starts cold, there is nothing to fade from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from framestyle.errors import UsageError
from framestyle.media.window import frame_index
from framestyle.settings import Settings, parse_change


def schedule_styles(settings: Settings) -> list[Path]:
    """Every style group of the run, in order: ``--style``'s, then each change's."""
    return [*settings.style, *(path for change in map(parse_change, settings.style_at)
                               for path, _ in change.styles)]


@dataclass(frozen=True)
class StyleKey:
    """From frame ``first`` on, the groups weighted so; reached by a fade
    over ``fade`` frames from the weights before it (0: at once)."""

    first: int
    weights: tuple[float, ...]
    fade: int


@dataclass(frozen=True)
class StyleTimeline:
    """A video's schedule resolved to frame indices: its keys in order and a
    label for each (the styles' file names, for the report)."""

    keys: tuple[StyleKey, ...]
    labels: tuple[str, ...]
    groups: tuple[str, ...]  # the style group each weight is for (its path)

    def weights_at(self, index: int) -> tuple[float, ...]:
        """The style groups' weights for frame ``index``."""
        current = self.keys[0].weights
        for key in self.keys[1:]:
            if index < key.first:
                break
            if index < key.first + key.fade:
                share = (index - key.first + 1) / (key.fade + 1)
                return tuple((1 - share) * a + share * b for a, b in zip(current, key.weights, strict=True))
            current = key.weights
        return current

    def label_at(self, index: int) -> str:
        """Which styles frame ``index`` takes: ``a.jpg``, or ``a.jpg → b.jpg 40%`` in a fade."""
        position = max(k for k, key in enumerate(self.keys) if key.first <= index)
        key = self.keys[position]
        if position and index < key.first + key.fade:
            share = (index - key.first + 1) / (key.fade + 1)
            return f"{self.labels[position - 1]} → {self.labels[position]} {share:.0%}"
        return self.labels[position]

    def mix_at(self, index: int) -> tuple[tuple[str, float], ...]:
        """Frame ``index``'s styles and their weights, by path: what decides its result."""
        return tuple((group, round(weight, 9)) for group, weight in zip(self.groups, self.weights_at(index),
                                                                        strict=True) if weight > 0)

    def to_json(self) -> str:
        return json.dumps({"keys": [[k.first, list(k.weights), k.fade] for k in self.keys],
                           "labels": list(self.labels), "groups": list(self.groups)})

    @classmethod
    def from_json(cls, text: str | None) -> StyleTimeline | None:
        try:
            data = json.loads(text or "")
            return cls(tuple(StyleKey(first, tuple(weights), fade) for first, weights, fade in data["keys"]),
                       tuple(data["labels"]), tuple(data["groups"]))
        except (ValueError, KeyError, TypeError):
            return None


def resolve_timeline(settings: Settings, fps: float | None, base_weights: Sequence[float],
                     starts_shot: Callable[[int], bool]) -> StyleTimeline | None:
    """The schedule of ``settings`` for a video at ``fps`` (None without
    ``--style-at``): positions as frame indices, in order; a change at a
    frame that ``starts_shot`` (the video cuts there) is instant."""
    if not settings.style_at:
        return None
    changes = [parse_change(text) for text in settings.style_at]
    groups = len(settings.style) + sum(len(change.styles) for change in changes)
    keys = [StyleKey(0, (*base_weights, *[0.0] * (groups - len(base_weights))), 0)]
    labels = [" + ".join(path.name for path in settings.style)]
    offset = len(settings.style)
    placed = []
    for change in changes:
        total = sum(weight for _, weight in change.styles)
        shares = [0.0] * groups
        for k, (_, weight) in enumerate(change.styles):
            shares[offset + k] = weight / total
        offset += len(change.styles)
        index = frame_index(change.position, fps, end=False)
        placed.append((index, tuple(shares), " + ".join(path.name for path, _ in change.styles)))
    placed.sort(key=lambda entry: entry[0])
    if len({index for index, _, _ in placed}) < len(placed):
        raise UsageError("--style-at: two changes at the same frame")
    for index, weights, label in placed:
        fade = 0 if index == 0 or starts_shot(index) else settings.style_fade
        keys.append(StyleKey(index, weights, fade))
        labels.append(label)
    return StyleTimeline(tuple(keys), tuple(labels), tuple(str(path) for path in schedule_styles(settings)))


def first_changed(new: StyleTimeline | None, old: StyleTimeline | None, frames: int) -> int | None:
    """The first of ``frames`` frames whose styles differ between two runs'
    schedules (None: none do). A run without one gives every frame the
    other's first styles (its ``--style``: a changed ``--style`` changes
    the fingerprint, and every frame with it)."""
    if new is None and old is None:
        return None
    for index in range(frames):
        ours = new.mix_at(index) if new is not None else old.mix_at(0)  # type: ignore[union-attr]
        theirs = old.mix_at(index) if old is not None else new.mix_at(0)  # type: ignore[union-attr]
        if ours != theirs:
            return index
    return None
