"""The inline SVG charts: scales, thresholds and long series."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from angles.status.charts import MAX_POINTS, line_chart, nice_ceiling, thin

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


def points(svg: str) -> list[tuple[float, float]]:
    [found] = re.findall(r'<polyline class="line s0" points="([^"]*)"', svg)
    return [tuple(map(float, pair.split(","))) for pair in found.split()]


def test_the_scale_starts_at_zero_and_ends_on_a_round_number():
    assert [nice_ceiling(v) for v in (0, 0.4, 1, 7, 12, 51, 70, 2990)] == [
        1,
        0.5,
        1,
        10,
        20,
        100,
        100,
        5000,
    ]
    samples = [(START, 0.0), (START + timedelta(days=15), 35.0), (END, 70.0)]
    chart = line_chart("backlog", {"sync": samples}, START, END, str)
    assert chart.top == "100.0"
    assert points(chart.svg) == [(0.0, 160.0), (300.0, 104.0), (600.0, 48.0)]


def test_thresholds_are_drawn_only_near_the_values():
    samples = [(START, 3.0), (END, 4.0)]
    chart = line_chart("b", {"sync": samples}, START, END, str, {"warning": 5, "error": 500})
    assert 'class="limit warning"' in chart.svg and 'class="limit error"' not in chart.svg
    assert "dashed line: warning above 5" in chart.summary


def test_a_long_series_keeps_its_peaks():
    step = (END - START) / 10_000
    samples = [(START + step * i, float(i % 97)) for i in range(10_000)]
    samples[4321] = (samples[4321][0], 1000.0)
    kept = thin(samples, START, END)
    assert len(kept) <= MAX_POINTS
    assert (samples[4321]) in kept
    assert kept == sorted(kept)
    chart = line_chart("long", {"x": samples}, START, END, str)
    assert len(points(chart.svg)) == len(kept)
    assert "<path" not in chart.svg  # no dots on a long line
