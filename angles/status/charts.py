"""Small inline SVG charts: lines over time and a bar per day.

The SVG stretches to its box (``preserveAspectRatio="none"``, strokes that do not scale),
so it fits a phone as well as a wide screen; the labels are HTML around it, laid out by
the page, and stay readable at any width. Colours come from the page's style sheet
(classes ``s0``…, ``ok``, ``warning``, ``error``), so print and dark mode restyle them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from angles.status.summary import Day, Sample

WIDTH, HEIGHT = 600, 160
#: Beyond this many points a line keeps the highest value of each slice of time.
MAX_POINTS = 400
#: Up to this many points each one is also drawn as a dot.
MAX_DOTS = 60
SERIES_CLASSES = 6


@dataclass(frozen=True)
class Chart:
    """An SVG chart and the labels the page sets around it."""

    svg: str  # markup built here, every text in it escaped
    top: str  # the value at the top of the chart
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, label)
    summary: str = ""  # the figures in words, for print and for readers without the chart


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Sample]],
    start: datetime,
    end: datetime,
    show: Callable[[float], str],
    thresholds: Mapping[str, float] | None = None,
) -> Chart:
    """Lines of ``series`` (label -> samples, oldest first) between ``start`` and ``end``.

    ``thresholds`` (``warning``/``error`` -> value) are drawn as dashed lines when they
    fit within twice the highest value, so a far-off limit does not flatten the line.
    """
    values = [value for samples in series.values() for _, value in samples]
    highest = max(values, default=0.0)
    limits = {
        kind: value
        for kind, value in (thresholds or {}).items()
        if value <= max(highest * 2, 1.0) or not values
    }
    top = nice_ceiling(max([highest, *limits.values()]))
    span = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return min(max((at - start).total_seconds() / span, 0.0), 1.0) * WIDTH

    def y(value: float) -> float:
        return HEIGHT - value / top * HEIGHT

    parts = [_grid()]
    for kind, value in sorted(limits.items()):
        parts.append(
            f'<line class="limit {kind}" x1="0" x2="{WIDTH}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" vector-effect="non-scaling-stroke"/>'
        )
    legend = []
    for index, (label, samples) in enumerate(series.items()):
        css = f"s{index % SERIES_CLASSES}"
        legend.append((css, label))
        points = thin(samples, start, end)
        coordinates = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
        parts.append(
            f'<polyline class="line {css}" points="{coordinates}" '
            'vector-effect="non-scaling-stroke"/>'
        )
        if len(points) <= MAX_DOTS:
            dots = "".join(f"M{x(at):.1f} {y(value):.1f}h0" for at, value in points)
            parts.append(f'<path class="dot {css}" d="{dots}" vector-effect="non-scaling-stroke"/>')
    words = "; ".join(_describe(label, samples, show) for label, samples in series.items())
    for kind, value in sorted(limits.items(), key=lambda item: item[1]):
        words += f"; dashed line: {kind} above {show(value)}"
    return Chart(_svg(title, parts), show(top), legend, words)


def day_bars(title: str, days: Sequence[Day]) -> Chart:
    """One bar per day, as tall as its number of runs, split into ok, warning and error."""
    most = max((day.total for day in days), default=0) or 1
    width = WIDTH / max(len(days), 1)
    parts = [_grid()]
    for index, day in enumerate(days):
        left = index * width + width * 0.1
        bar = width * 0.8
        label = f"{day.day.isoformat()}: {_runs(day.total)}"
        if day.total:
            label += f" ({day.ok} ok, {day.warning} warning, {day.error} error)"
        shapes, bottom = [], float(HEIGHT)
        for kind, count in (("ok", day.ok), ("warning", day.warning), ("error", day.error)):
            if count:
                height = count / most * HEIGHT
                bottom -= height
                shapes.append(
                    f'<rect class="{kind}" x="{left:.2f}" y="{bottom:.2f}" '
                    f'width="{bar:.2f}" height="{height:.2f}"/>'
                )
        if not shapes:
            shapes.append(
                f'<rect class="none" x="{left:.2f}" y="{HEIGHT - 3}" width="{bar:.2f}" height="3"/>'
            )
        parts.append(f"<g><title>{escape(label)}</title>{''.join(shapes)}</g>")
    runs = sum(day.total for day in days)
    worst = [day for day in days if day.error]
    summary = f"{_runs(runs)} over {len(days)} days"
    if worst:
        summary += f"; errors on {len(worst)} day{'s' if len(worst) != 1 else ''}"
    legend = [("ok", "ok"), ("warning", "warning"), ("error", "error")]
    return Chart(_svg(title, parts), f"{most} runs a day", legend, summary)


def thin(samples: Sequence[Sample], start: datetime, end: datetime) -> list[Sample]:
    """At most :data:`MAX_POINTS` samples: the highest of each slice of time, in order."""
    if len(samples) <= MAX_POINTS:
        return list(samples)
    span = max((end - start).total_seconds(), 1.0)
    kept: dict[int, Sample] = {}
    for at, value in samples:
        slot = min(int((at - start).total_seconds() / span * MAX_POINTS), MAX_POINTS - 1)
        if slot not in kept or value > kept[slot][1]:
            kept[slot] = (at, value)
    return [kept[slot] for slot in sorted(kept)]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _grid() -> str:
    return "".join(
        f'<line class="grid" x1="0" x2="{WIDTH}" y1="{y}" y2="{y}" '
        'vector-effect="non-scaling-stroke"/>'
        for y in (0, HEIGHT / 2, HEIGHT)
    )


def _svg(title: str, parts: list[str]) -> str:
    label = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{label}">'
        f"<title>{label}</title>{''.join(parts)}</svg>"
    )


def _describe(label: str, samples: Sequence[Sample], show: Callable[[float], str]) -> str:
    if not samples:
        return f"{label}: no data"
    values = [value for _, value in samples]
    return (
        f"{label}: now {show(values[-1])}, lowest {show(min(values))}, highest {show(max(values))}"
    )


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"
